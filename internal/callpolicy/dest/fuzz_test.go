package dest

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNormalize feeds outside bytes (Request-URI user parts) to Normalize:
// it must not panic, and what it returns must hold together.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+447400123456", "0044 7400 123456", "9011447400123456", "%2B44", "sip:1001@pbx",
		"tel:+1-212-555-0123;ext=1", "*72", "#", "\x00", "+", "%", "\uff0b\uff14\uff14", "00881612345678"} {
		f.Add(s)
	}
	n, err := New(Options{DefaultCountry: "CN", OutsidePrefixes: []string{"9", "0"}, CacheSize: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := n.Normalize(in)
		switch r.Kind {
		case KindNumber:
			if !strings.HasPrefix(r.E164, "+") || len(r.E164) > 16 || r.CallingCode <= 0 || !allDigits(r.E164[1:]) {
				t.Fatalf("Normalize(%q) = %+v", in, r)
			}
		case KindInternal, KindInvalid:
			if r.E164 != "" || r.Reason == "" || !utf8.ValidString(r.Reason) {
				t.Fatalf("Normalize(%q) = %+v", in, r)
			}
		default:
			t.Fatalf("Normalize(%q): kind %d", in, r.Kind)
		}
		if again := n.Normalize(in); again != r {
			t.Fatalf("Normalize(%q) not deterministic: %+v then %+v", in, r, again)
		}
	})
}
