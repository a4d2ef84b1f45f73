package decision

import (
	"net/netip"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func ban(scope Scope, p string, account string, until time.Duration) Decision {
	return Decision{Type: TypeBan, Scope: scope, Prefix: netip.MustParsePrefix(p), Account: account,
		Origin: OriginEngine, Rule: "test", At: t0, Until: t0.Add(until)}
}

func TestSetLookups(t *testing.T) {
	s := NewSet()
	s.Apply(ban(ScopeIP, "198.51.100.7/32", "", time.Minute))
	s.Apply(ban(ScopeIPAccount, "198.51.100.8/32", "1001", time.Minute))
	s.Apply(ban(ScopePrefix, "2001:db8:1::/64", "", time.Minute))
	s.Apply(ban(ScopeAccount, "0.0.0.0/0", "1002", time.Minute))

	cases := []struct {
		name    string
		addr    string
		account string
		at      time.Duration
		banned  bool // Banned(addr)
		pair    bool // BannedAccount(addr, account)
	}{
		{"ip ban", "198.51.100.7", "", 0, true, false},
		{"ipv4-mapped form of a banned ip", "::ffff:198.51.100.7", "", 0, true, false},
		{"ip ban expired", "198.51.100.7", "", time.Minute, false, false},
		{"other ip", "198.51.100.9", "", 0, false, false},
		{"ip_account ban hits only that account", "198.51.100.8", "1001", 0, false, true},
		{"same address, another account", "198.51.100.8", "1003", 0, false, false},
		{"inside banned /64", "2001:db8:1::42", "", 0, true, false},
		{"outside banned /64", "2001:db8:2::42", "", 0, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			now := t0.Add(tc.at)
			if _, got := s.Banned(a, now); got != tc.banned {
				t.Errorf("Banned = %v, want %v", got, tc.banned)
			}
			if _, got := s.BannedAccount(a, tc.account, now); got != tc.pair {
				t.Errorf("BannedAccount = %v, want %v", got, tc.pair)
			}
		})
	}
	if _, ok := s.AccountLocked("1002", t0); !ok {
		t.Error("account lock not found")
	}
}

func TestSetUnbanIPLiftsAccounts(t *testing.T) {
	s := NewSet()
	s.Apply(ban(ScopeIP, "198.51.100.7/32", "", time.Hour))
	s.Apply(ban(ScopeIPAccount, "198.51.100.7/32", "1001", time.Hour))
	s.Apply(ban(ScopeIPAccount, "198.51.100.7/32", "1002", time.Hour))
	s.Apply(ban(ScopeIPAccount, "198.51.100.9/32", "1001", time.Hour))
	got := s.Remove(Key{Scope: ScopeIP, Prefix: netip.MustParsePrefix("198.51.100.7/32")}, true)
	if len(got) != 3 {
		t.Fatalf("lifted %d bans, want 3: %v", len(got), got)
	}
	if s.Len() != 1 {
		t.Errorf("left %d bans, want the other address's one", s.Len())
	}
}

func TestSetSweepAndList(t *testing.T) {
	s := NewSet()
	s.Apply(ban(ScopeIP, "198.51.100.1/32", "", time.Second))
	s.Apply(ban(ScopeIP, "198.51.100.2/32", "", time.Hour))
	forever := ban(ScopeIP, "198.51.100.3/32", "", 0)
	forever.Until = time.Time{}
	s.Apply(forever)
	if n := len(s.List(t0.Add(time.Minute))); n != 2 {
		t.Errorf("List after 1m = %d bans, want 2", n)
	}
	swept := s.Sweep(t0.Add(time.Minute))
	if len(swept) != 1 || swept[0].Prefix.Addr().String() != "198.51.100.1" {
		t.Errorf("swept %v", swept)
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d", s.Len())
	}
}

func TestLists(t *testing.T) {
	l := NewLists([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		[]netip.Prefix{netip.MustParsePrefix("203.0.0.0/16"), netip.MustParsePrefix("192.0.2.0/24")})
	if !l.Allowed(netip.MustParseAddr("::ffff:203.0.113.5")) {
		t.Error("mapped allowed address not allowed")
	}
	if l.Denied(netip.MustParseAddr("203.0.113.5")) {
		t.Error("allow must win over deny")
	}
	if !l.Denied(netip.MustParseAddr("192.0.2.1")) {
		t.Error("deny not applied")
	}
	l2 := l.AddAllow(netip.MustParsePrefix("192.0.2.1/32"))
	if l2.Denied(netip.MustParseAddr("192.0.2.1")) || !l.Denied(netip.MustParseAddr("192.0.2.1")) {
		t.Error("AddAllow must return a new list and leave the old one alone")
	}
}

func BenchmarkSetBannedMiss(b *testing.B) {
	s := NewSet()
	for i := range 10000 {
		s.Add(ban(ScopeIP, netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}).String()+"/32", "", time.Hour))
	}
	a := netip.MustParseAddr("198.51.100.7")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Banned(a, t0); ok {
			b.Fatal("banned")
		}
	}
}
