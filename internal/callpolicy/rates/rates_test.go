package rates

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sample = `source: test rates
currency: USD
rates:
  - {prefix: "+44", name: United Kingdom, per_minute: 0.02}
  - {prefix: "+447", name: UK mobile, per_minute: 0.10}
  - {prefix: "+4479", name: UK mobile 79, per_minute: 0.125, increment: 60}
  - {prefix: "+1", name: NANP, per_minute: 0.01}
  - {prefix: "+1876", name: Jamaica, per_minute: 0.30, currency: EUR}
  - {prefix: "+881", name: GMSS, per_minute: 7.5}
`

func mustParse(t testing.TB, data string) *Table {
	t.Helper()
	tab, err := Parse("rates.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestLookup(t *testing.T) {
	tab := mustParse(t, sample)
	tests := []struct {
		in       string
		prefix   string
		currency string
		ok       bool
	}{
		{"+442079460000", "+44", "USD", true},
		{"+447400123456", "+447", "USD", true},
		{"+447911123456", "+4479", "USD", true},
		{"+12125550123", "+1", "USD", true},
		{"+18765551234", "+1876", "EUR", true},
		{"+881612345678", "+881", "USD", true},
		{"+4", "", "", false},
		{"+33123456789", "", "", false},
		{"447400123456", "", "", false}, // not E.164 form
		{"", "", "", false},
		{"+", "", "", false},
	}
	for _, tc := range tests {
		r, ok := tab.Lookup(tc.in)
		if ok != tc.ok || r.Prefix != tc.prefix || r.Currency != tc.currency {
			t.Errorf("Lookup(%q) = %+v, %v; want %s %s %v", tc.in, r, ok, tc.prefix, tc.currency, tc.ok)
		}
	}
	if tab.Len() != 6 || tab.Source() != "test rates" {
		t.Errorf("Len %d Source %q", tab.Len(), tab.Source())
	}
}

func TestCost(t *testing.T) {
	tab := mustParse(t, sample)
	tests := []struct {
		e164 string
		d    time.Duration
		want string
	}{
		{"+442079460000", time.Minute, "0.02"},
		{"+442079460000", 90 * time.Second, "0.03"},
		{"+442079460000", time.Second, "0.000334"},             // 0.02/60 rounded up to the millionth
		{"+442079460000", 1500 * time.Millisecond, "0.000667"}, // 2 started seconds
		{"+447911123456", time.Second, "0.125"},                // 60 s increment: one started minute
		{"+447911123456", 61 * time.Second, "0.25"},            // two
		{"+881612345678", 2 * time.Hour, "900.00"},             // 7.5 × 120
		{"+12125550123", 0, "0.00"},                            // nothing for nothing
		{"+12125550123", -time.Minute, "0.00"},                 // nor for a negative duration
		{"+12125550123", 1000000 * time.Hour, "600000.00"},     // large but exact
		{"+18765551234", 10 * time.Minute, "3.00"},
	}
	for _, tc := range tests {
		got, r, ok := tab.Estimate(tc.e164, tc.d)
		if !ok || got.String() != tc.want {
			t.Errorf("Estimate(%s, %v) = %s (%s), %v; want %s", tc.e164, tc.d, got, r.Prefix, ok, tc.want)
		}
	}
	if _, _, ok := tab.Estimate("+33123456789", time.Minute); ok {
		t.Error("Estimate for an uncovered number reported ok")
	}
}

func TestParseAmount(t *testing.T) {
	good := map[string]Amount{"0": 0, "1": Micro, "0.02": 20000, "13.5696": 13569600, "0.000001": 1, " 2.5 ": 2500000}
	for in, want := range good {
		if got, err := ParseAmount(in); err != nil || got != want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.", ".5", "0.0000001", "1e3", "abc", "1,5", "1.2.3", "NaN", "9999999999"} {
		if got, err := ParseAmount(in); err == nil {
			t.Errorf("ParseAmount(%q) = %d, want an error", in, got)
		}
	}
	if got := (Rate{PerMinute: Amount(math.MaxInt64 / 2), Increment: 1}).Cost(1000 * time.Hour); got != math.MaxInt64 {
		t.Errorf("overflowing cost = %d, want saturation", got)
	}
	if s := Amount(-1500000).String(); s != "-1.50" {
		t.Errorf("String = %q", s)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data string
		line       int
		msg        string
	}{
		{"unknown top key", "currency: USD\nrate:\n  - {prefix: \"+1\", per_minute: 1}\n", 2, `unknown key "rate"`},
		{"unknown row key", "currency: USD\nrates:\n  - prefix: \"+1\"\n    per_minute: 1\n  - prefix: \"+44\"\n    permin: 1\n", 5, `unknown key "permin"`},
		{"bad prefix", "currency: USD\nrates:\n  - {prefix: \"1\", per_minute: 1}\n", 3, "want + and 1 to 15 digits"},
		{"zero after plus", "currency: USD\nrates:\n  - {prefix: \"+0\", per_minute: 1}\n", 3, "want + and"},
		{"negative price", "currency: USD\nrates:\n  - {prefix: \"+1\", per_minute: -1}\n", 3, "per_minute"},
		{"price as list", "currency: USD\nrates:\n  - {prefix: \"+1\", per_minute: [1]}\n", 3, "per_minute"},
		{"no price", "currency: USD\nrates:\n  - {prefix: \"+1\"}\n", 3, "per_minute is required"},
		{"no currency", "rates:\n  - {prefix: \"+1\", per_minute: 1}\n", 2, "no currency"},
		{"bad currency", "currency: dollars\nrates:\n  - {prefix: \"+1\", per_minute: 1}\n", 1, "ISO 4217"},
		{"bad increment", "currency: USD\nrates:\n  - {prefix: \"+1\", per_minute: 1, increment: 0}\n", 3, "increment"},
		{"duplicate", "currency: USD\nrates:\n  - {prefix: \"+1\", per_minute: 1}\n  - {prefix: \"+1\", per_minute: 2}\n", 4, "already listed on line 3"},
		{"no rates", "currency: USD\n", 1, "no rates"},
		{"rates not a list", "currency: USD\nrates: 5\n", 2, "want a list"},
		{"not a mapping", "- 1\n", 1, "want a mapping"},
		{"syntax", "currency: USD\nrates: [\n", 0, ""},
		{"empty", "", 0, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("my-rates.yaml", []byte(tc.data))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.File != "my-rates.yaml" || (tc.line > 0 && e.Line != tc.line) || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("err = %q, want my-rates.yaml:%d ... %s", err, tc.line, tc.msg)
			}
			if tc.line > 0 && !strings.HasPrefix(err.Error(), "my-rates.yaml:") {
				t.Errorf("err = %q does not start with file:line", err)
			}
		})
	}
}

// TestExample loads the shipped example and checks it is what it says.
func TestExample(t *testing.T) {
	path := filepath.Join("..", "..", "..", "examples", "rates.yaml")
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tab.Source(), "https://") || tab.Len() < 20 {
		t.Errorf("example: source %q, %d rows", tab.Source(), tab.Len())
	}
	got, r, ok := tab.Estimate("+12642351234", 10*time.Minute)
	if !ok || r.Name != "Anguilla" || got.String() != "4.50" {
		t.Errorf("Anguilla 10 min = %s via %+v", got, r)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}
