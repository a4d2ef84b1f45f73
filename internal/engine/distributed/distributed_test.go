package distributed

import (
	"net/netip"
	"testing"
	"time"
)

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
