package token_test

import (
	"fmt"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/token"
)

func ExampleVerifier_Verify() {
	const secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	now := time.Unix(1_800_000_000, 0)
	v := token.NewVerifier(token.Options{Now: func() time.Time { return now }})
	code, _ := token.Code(secret, now) // what the phone's authenticator shows
	fmt.Println(v.Verify("2001", secret, code))
	fmt.Println(v.Verify("2001", secret, code))
	fmt.Println(v.Verify("2001", secret, "12 34"))
	// Output:
	// <nil>
	// call token already used
	// call token is not 6 digits
}
