package srckey

import (
	"net/netip"
	"testing"
)

func TestHash(t *testing.T) {
	h := func(s string, bits int, seed uint64) uint64 { return Hash(netip.MustParseAddr(s), bits, seed) }
	if h("192.0.2.1", 64, 1) != h("::ffff:192.0.2.1", 64, 1) {
		t.Error("an IPv4-mapped address must hash as its IPv4 address")
	}
	if h("192.0.2.1", 64, 1) == h("192.0.2.2", 64, 1) {
		t.Error("two IPv4 addresses hash alike")
	}
	if h("2001:db8::1", 64, 1) != h("2001:db8::ffff:1", 64, 1) {
		t.Error("one /64 must hash alike")
	}
	if h("2001:db8::1", 64, 1) == h("2001:db8:0:1::1", 64, 1) {
		t.Error("two /64s hash alike")
	}
	if h("2001:db8::1", 128, 1) == h("2001:db8::2", 128, 1) {
		t.Error("with /128 two addresses hash alike")
	}
	if h("2001:db8::1:0:0:1", 96, 1) != h("2001:db8::1:0:0:2", 96, 1) || h("2001:db8::1:0:0:1", 96, 1) == h("2001:db8::2:0:0:1", 96, 1) {
		t.Error("/96 grouping wrong")
	}
	if h("192.0.2.1", 64, 1) == h("192.0.2.1", 64, 2) {
		t.Error("the seed does not change the key")
	}
}

func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		max, shards, per int
		shift            uint
	}{
		{1, 1, 1, 64},
		{100, 1, 128, 64},
		{128, 2, 64, 63},
		{65536, 256, 256, 56},
		{1 << 20, 256, 4096, 56},
		{1000, 8, 128, 61},
	} {
		s, p, sh := Layout(tc.max)
		if s != tc.shards || p != tc.per || sh != tc.shift {
			t.Errorf("Layout(%d) = %d, %d, %d; want %d, %d, %d", tc.max, s, p, sh, tc.shards, tc.per, tc.shift)
		}
		if s*p < tc.max {
			t.Errorf("Layout(%d) holds only %d", tc.max, s*p)
		}
	}
}
