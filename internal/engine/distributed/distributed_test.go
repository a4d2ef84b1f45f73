package distributed

import (
	"net/netip"
	"testing"
	"time"
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
}

func TestDetectorWindow(t *testing.T) {
	d, err := New(time.Minute, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	if d.Fail(a(1), "1001", t0) || d.Fail(a(1), "1001", t0.Add(time.Second)) || d.Fail(a(2), "1001", t0.Add(2*time.Second)) {
		t.Fatal("tripped with two distinct sources")
	}
	if d.Fail(a(3), "1001", t0.Add(2*time.Minute)) {
		t.Fatal("tripped with sources outside findtime")
	}
	if d.Fail(a(4), "1001", t0.Add(2*time.Minute+time.Second)) || !d.Fail(a(5), "1001", t0.Add(2*time.Minute+2*time.Second)) {
		t.Fatal("three distinct sources within findtime did not trip exactly at the third")
	}
}
