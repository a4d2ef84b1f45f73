package detector

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

func TestNormalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"1001", "1001"},
		{"Alice", "alice"},
		{" 1001\t", "1001"},
		{"%31%30%30%31", "1001"},
		{"10%2501", "10%01"}, // one decoding pass: %25 is a literal '%'
		{"1001\x00", "1001"},
		{"%00%31001", "1001"},
		{"%3", "%3"},   // a broken escape stays
		{"%zz", "%zz"}, // not hex
		{"ÄBC", "Äbc"}, // only ASCII letters fold
		{"", ""},
		{strings.Repeat("a", 200), strings.Repeat("a", MaxName)},
	}
	for _, tc := range cases {
		if got := Normalize(tc.in); got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNormalizeCanonicalDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _ = Normalize("1001") }); n != 0 {
		t.Errorf("Normalize of a canonical name allocates %v times", n)
	}
}

func TestNames(t *testing.T) {
	var n Names
	for _, s := range []string{"1001", "", "1001", "x", "y", "z"} {
		n.Add(s)
	}
	if n.Len() != 3 || n.First() != "1001" || n.At(1) != "x" || n.At(2) != "y" || n.Has("z") {
		t.Errorf("Names = %+v", n)
	}
}

func TestOutKeepsFirstIPBan(t *testing.T) {
	a := netip.MustParsePrefix("192.0.2.1/32")
	var o Out
	o.Ban(decision.Decision{Scope: decision.ScopeIP, Prefix: a, Rule: "first"})
	o.Ban(decision.Decision{Scope: decision.ScopeIPAccount, Prefix: a, Account: "1001", Rule: "jail"})
	o.Ban(decision.Decision{Scope: decision.ScopeIP, Prefix: a, Rule: "second"})
	ds := o.Decisions()
	if len(ds) != 2 || ds[0].Rule != "first" || ds[1].Rule != "jail" || !o.HasIPBan() {
		t.Errorf("decisions = %v", ds)
	}
	o.Set(Verdict{Rule: "flag"})
	o.Set(Verdict{Action: Drop, Rule: "drop"})
	o.Set(Verdict{Action: Reject, Rule: "later"})
	if o.V.Rule != "drop" {
		t.Errorf("verdict = %+v, want the first refusal", o.V)
	}
	o.Reset()
	if len(o.Decisions()) != 0 || o.V != (Verdict{}) {
		t.Error("Reset left state")
	}
}

func TestSharedIPBan(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	src := netip.MustParseAddr("192.0.2.1")
	sh := &Shared{Set: decision.NewSet(), Known: NewKnown(8)}
	d, ok := sh.IPBan(src, now, "r", "why", time.Hour)
	if !ok {
		t.Fatal("no ban")
	}
	sh.Set.Apply(d)
	if _, ok := sh.IPBan(src, now, "r", "why", time.Minute); ok {
		t.Error("a shorter ban replaced a longer one")
	}
	if _, ok := sh.IPBan(src, now, "r", "why", 2*time.Hour); !ok {
		t.Error("a longer ban was not placed")
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"1001", "Alice", " 1001\t", "%31%30%30%31", "1001\x00", "%", "%4", "%zz", "ÄBC", strings.Repeat("%41", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Normalize(s)
		if len(out) > MaxName {
			t.Fatalf("Normalize(%q) is %d bytes", s, len(out))
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c == 0 || 'A' <= c && c <= 'Z' {
				t.Fatalf("Normalize(%q) = %q keeps %q", s, out, c)
			}
		}
		if canonical(s) && out != s {
			t.Fatalf("canonical %q changed to %q", s, out)
		}
	})
}
