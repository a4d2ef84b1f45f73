package dest_test

import (
	"fmt"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
)

func ExampleNormalizer_Normalize() {
	n, err := dest.New(dest.Options{DefaultCountry: "CN", OutsidePrefixes: []string{"9"}})
	if err != nil {
		panic(err)
	}
	for _, in := range []string{"sip:%2B881612345678@pbx;user=phone", "9 00 53 5 234 5678", "138 1234 5678", "1001"} {
		r := n.Normalize(in)
		fmt.Printf("%v %q %q %v [%v]\n", r.Kind, r.E164, r.Country, r.Type, r.Classes)
	}
	// Output:
	// number "+881612345678" "" mobile [international,satellite]
	// number "+5352345678" "CU" mobile [international,high_risk]
	// number "+8613812345678" "CN" mobile []
	// internal "" "" unknown []
}

func ExampleNormalizer_ParsePattern() {
	n, err := dest.New(dest.Options{DefaultCountry: "CN"})
	if err != nil {
		panic(err)
	}
	for _, s := range []string{"00", "+", "premium", "0044", "010"} {
		p, err := n.ParsePattern(s)
		fmt.Println(s, "->", p, err)
	}
	// Output:
	// 00 -> international <nil>
	// + -> international <nil>
	// premium -> premium <nil>
	// 0044 -> +44 <nil>
	// 010 -> +8610 <nil>
}
