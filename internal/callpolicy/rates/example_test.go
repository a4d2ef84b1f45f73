package rates_test

import (
	"fmt"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/rates"
)

func ExampleTable_Estimate() {
	t, err := rates.Parse("rates.yaml", []byte(`
currency: USD
rates:
  - {prefix: "+44",  per_minute: 0.02}
  - {prefix: "+447", per_minute: 0.10, increment: 60}
`))
	if err != nil {
		panic(err)
	}
	cost, r, ok := t.Estimate("+447400123456", 90*time.Second)
	fmt.Println(cost, r.Currency, r.Prefix, ok)
	_, err = rates.Parse("rates.yaml", []byte("currency: USD\nrates:\n  - {prefix: \"44\", per_minute: 0.02}\n"))
	fmt.Println(err)
	// Output:
	// 0.20 USD +447 true
	// rates.yaml:3: prefix "44": want + and 1 to 15 digits, not starting with 0 (+44, +4479)
}
