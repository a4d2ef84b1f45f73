package detector

import (
	"net/netip"
	"testing"
)

func TestKnownKeepsRecent(t *testing.T) {
	k := NewKnown(10)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}) }
	for i := range PerAccount + 2 {
		k.Registered(addr(i), "1001")
	}
	cases := []struct {
		name string
		i    int
		want bool
	}{
		{"oldest forgotten", 0, false},
		{"second oldest forgotten", 1, false},
		{"kept", 2, true},
		{"newest", PerAccount + 1, true},
	}
	for _, tc := range cases {
		if got := k.Has(addr(tc.i), "1001"); got != tc.want {
			t.Errorf("%s: Has = %v, want %v", tc.name, got, tc.want)
		}
	}
	if k.Has(addr(5), "1002") {
		t.Error("address known for another account")
	}
	if !k.HasAny(addr(5)) || k.HasAny(addr(0)) {
		t.Error("HasAny does not follow the kept addresses")
	}
}
