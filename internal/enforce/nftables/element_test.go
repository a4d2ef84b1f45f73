package nftables

import (
	"net/netip"
	"testing"
	"time"

	nft "github.com/google/nftables"
)

func TestElement(t *testing.T) {
	e := &Enforcer{set4: &nft.Set{Name: SetIPv4}, set6: &nft.Set{Name: SetIPv6}}
	now := time.Date(2026, 8, 22, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		ban     Ban
		ok      bool
		set     string
		key     int
		timeout time.Duration
	}{
		{"v4 with expiry", Ban{Addr: netip.MustParseAddr("198.51.100.7"), Until: now.Add(time.Hour)}, true, SetIPv4, 4, time.Hour + time.Millisecond},
		{"mapped v4", Ban{Addr: netip.MustParseAddr("::ffff:198.51.100.7")}, true, SetIPv4, 4, 0},
		{"v6", Ban{Addr: netip.MustParseAddr("2001:db8::7"), Until: now.Add(1500 * time.Microsecond)}, true, SetIPv6, 16, 2 * time.Millisecond},
		{"expired", Ban{Addr: netip.MustParseAddr("198.51.100.7"), Until: now.Add(-time.Second)}, false, "", 0, 0},
		{"ends now", Ban{Addr: netip.MustParseAddr("198.51.100.7"), Until: now}, false, "", 0, 0},
		{"zero address", Ban{}, false, "", 0, 0},
		{"zoned", Ban{Addr: netip.MustParseAddr("fe80::1%eth0")}, false, "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, el, ok := e.element(tc.ban, now)
			if ok != tc.ok {
				t.Fatalf("ok = %v", ok)
			}
			if !ok {
				return
			}
			if s.Name != tc.set || len(el.Key) != tc.key || el.Timeout != tc.timeout {
				t.Errorf("got %s key %d timeout %v, want %s %d %v", s.Name, len(el.Key), el.Timeout, tc.set, tc.key, tc.timeout)
			}
		})
	}
}
