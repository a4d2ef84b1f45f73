package jail

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestRepeats(t *testing.T) {
	k := decision.Key{Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("198.51.100.7/32")}
	cases := []struct {
		name      string
		at        time.Duration
		wantD     time.Duration
		wantCount int
	}{
		{"first", 0, 3 * time.Minute, 1},
		{"second doubles", 10 * time.Minute, 6 * time.Minute, 2},
		{"third doubles", 20 * time.Minute, 12 * time.Minute, 3},
		{"capped at maxtime", 40 * time.Minute, 20 * time.Minute, 4},
		{"clean maxtime restarts", 2 * time.Hour, 3 * time.Minute, 1},
	}
	r := NewRepeats(10)
	for _, tc := range cases {
		d, n := r.Next(k, 3*time.Minute, 2, 20*time.Minute, t0.Add(tc.at))
		if d != tc.wantD || n != tc.wantCount {
			t.Errorf("%s: got %v count %d, want %v count %d", tc.name, d, n, tc.wantD, tc.wantCount)
		}
	}
}

func TestJailBounded(t *testing.T) {
	j, err := New([]Rule{{FindTime: time.Hour, MaxRetry: 3, Mode: IPAccount, BanTime: time.Minute}}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		j.Fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), "1001", t0)
	}
	if j.Len() > 100 {
		t.Fatalf("jail holds %d keys, bound 100", j.Len())
	}
}
