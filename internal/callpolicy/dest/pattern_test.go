package dest

import "testing"

func TestParsePattern(t *testing.T) {
	cn := newCN(t)
	us, err := New(Options{DefaultCountry: "US"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n    *Normalizer
		in   string
		want Pattern
	}{
		{cn, "+", Pattern{Class: International}},
		{cn, "00", Pattern{Class: International}},
		{us, "011", Pattern{Class: International}},
		{cn, "international", Pattern{Class: International}},
		{cn, "premium", Pattern{Class: Premium}},
		{cn, "satellite", Pattern{Class: Satellite}},
		{cn, "high_risk", Pattern{Class: HighRisk}},
		{cn, "+44", Pattern{Prefix: "+44"}},
		{cn, "0044", Pattern{Prefix: "+44"}},
		{us, "01144", Pattern{Prefix: "+44"}},
		{cn, "010", Pattern{Prefix: "+8610"}},
		{us, "1900", Pattern{Prefix: "+1900"}},
		{cn, " +881 ", Pattern{Prefix: "+881"}},
	}
	for _, tc := range tests {
		got, err := tc.n.ParsePattern(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParsePattern(%q) in %s = %+v, %v; want %+v", tc.in, tc.n.DefaultCountry(), got, err, tc.want)
		}
		if err == nil && got.String() == "" {
			t.Errorf("ParsePattern(%q).String() is empty", tc.in)
		}
	}
	for _, bad := range []string{"", "abc", "+0", "+44a", "*", "+1234567890123456", "12"} {
		if p, err := cn.ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%q) = %+v, want an error", bad, p)
		}
	}
}

// TestPatternMatch: one rule written as the config writes it catches
// every spelling of an international call, and never an extension.
func TestPatternMatch(t *testing.T) {
	n := newCN(t)
	var rule []Pattern
	for _, s := range []string{"00", "+"} {
		p, err := n.ParsePattern(s)
		if err != nil {
			t.Fatal(err)
		}
		rule = append(rule, p)
	}
	match := func(in string) bool {
		r := n.Normalize(in)
		for _, p := range rule {
			if p.Match(r) {
				return true
			}
		}
		return false
	}
	for _, in := range []string{"+447400123456", "00447400123456", "9 0044 7400 123456", "011447400123456",
		"%2B447400123456", "tel:+1-212-555-0123", "00881612345678"} {
		if !match(in) {
			t.Errorf("no-international rule missed %q", in)
		}
	}
	for _, in := range []string{"13812345678", "010 1234 5678", "1001", "*72", "alice", "+8613812345678"} {
		if match(in) {
			t.Errorf("no-international rule matched %q", in)
		}
	}
	p44, err := n.ParsePattern("0044")
	if err != nil {
		t.Fatal(err)
	}
	if !p44.Match(n.Normalize("+44 7400 123456")) || p44.Match(n.Normalize("+4520123456")) {
		t.Error("prefix +44 matches wrongly")
	}
}
