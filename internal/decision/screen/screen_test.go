package screen

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/tollguard/tollguard/internal/decision"
)

func TestCheck(t *testing.T) {
	allowed := decision.NewLists([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}, nil)
	p := New([]netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}, allowed.Allowed)
	p.RefuseInternal = true
	ip := func(s string) decision.Decision {
		return decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix(s)}
	}
	pfx := func(s string) decision.Decision {
		d := ip(s)
		d.Scope = decision.ScopePrefix
		return d
	}
	cases := []struct {
		name string
		d    decision.Decision
		want error
	}{
		{"public host", ip("192.0.2.7/32"), nil},
		{"mapped public host", ip("::ffff:192.0.2.7/128"), nil},
		{"ipv6 host", ip("2001:db8::1/128"), nil},
		{"carrier in allow list", ip("198.51.100.20/32"), ErrAllowed},
		{"network over allow list", pfx("198.51.0.0/16"), ErrAllowed},
		{"allowed by predicate", ip("203.0.113.5/32"), ErrAllowed},
		{"network whose tail is allowed", pfx("203.0.113.0/24"), ErrAllowed},
		{"whole internet", pfx("0.0.0.0/0"), ErrTooBroad},
		{"ipv4 /15", pfx("192.0.0.0/15"), ErrTooBroad},
		{"ipv4 /16 accepted", pfx("192.0.0.0/16"), nil},
		{"ipv6 /31", pfx("2001:db8::/31"), ErrTooBroad},
		{"ipv6 /32 accepted", pfx("2001:db8::/32"), nil},
		{"whole ipv6", pfx("::/0"), ErrTooBroad},
		{"loopback", ip("127.0.0.1/32"), ErrReserved},
		{"unspecified", ip("0.0.0.0/32"), ErrReserved},
		{"multicast", ip("239.1.1.1/32"), ErrReserved},
		{"private", ip("10.1.2.3/32"), ErrInternal},
		{"ula", ip("fd00::1/128"), ErrInternal},
		{"ip scope on a network", ip("192.0.2.0/24"), ErrInvalid},
		{"no address", decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP}, ErrInvalid},
		{"bad scope", decision.Decision{Type: decision.TypeBan, Scope: "everything"}, ErrInvalid},
		{"bad type", decision.Decision{Type: "nuke", Scope: decision.ScopeIP}, ErrInvalid},
		{"account ban", decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1001"}, nil},
		{"account ban without account", decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount}, ErrInvalid},
		{"unban of allowed address is fine", decision.Decision{Type: decision.TypeUnban, Scope: decision.ScopeIP,
			Prefix: netip.MustParsePrefix("198.51.100.20/32")}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := p.Check(c.d)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Check(%v) = %v, want %v", c.d, err, c.want)
			}
		})
	}
}

func TestInternalNotRefusedByDefault(t *testing.T) {
	p := New(nil, nil)
	if err := p.CheckPrefix(netip.MustParsePrefix("10.1.2.3/32")); err != nil {
		t.Fatalf("a node may ban an internal phone: %v", err)
	}
}

func TestInternal(t *testing.T) {
	for s, want := range map[string]bool{"10.0.0.1": true, "::ffff:192.168.1.1": true, "100.64.0.1": true,
		"127.0.0.1": true, "fd12::1": true, "fe80::1": true, "192.0.2.1": false, "2001:db8::1": false} {
		if got := Internal(netip.MustParseAddr(s)); got != want {
			t.Errorf("Internal(%s) = %v, want %v", s, got, want)
		}
	}
}
