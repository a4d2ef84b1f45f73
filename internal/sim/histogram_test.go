package sim

import (
	"testing"
	"time"
)

func TestBucketRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		us      uint64
		wantLow uint64
	}{
		{name: "zero", us: 0, wantLow: 0},
		{name: "exact below 1024", us: 1023, wantLow: 1023},
		{name: "first log bucket", us: 1024, wantLow: 1024},
		{name: "rounded down in log range", us: 1025, wantLow: 1024},
		{name: "next log bucket", us: 1026, wantLow: 1026},
		{name: "one second", us: 1_000_000, wantLow: 999_424},
		{name: "huge clamps", us: 1 << 40, wantLow: bucketLow(histBuckets - 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := bucketLow(bucketOf(tc.us)); got != tc.wantLow {
				t.Errorf("bucketLow(bucketOf(%d)) = %d, want %d", tc.us, got, tc.wantLow)
			}
		})
	}
	for i := 1; i < histBuckets; i++ {
		if bucketLow(i) <= bucketLow(i-1) {
			t.Fatalf("bucket %d low %d not above bucket %d low %d", i, bucketLow(i), i-1, bucketLow(i-1))
		}
		if bucketOf(bucketLow(i)) != i {
			t.Fatalf("bucketOf(bucketLow(%d)) = %d", i, bucketOf(bucketLow(i)))
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{name: "p50", got: h.Quantile(0.5), want: 500 * time.Microsecond},
		{name: "p99", got: h.Quantile(0.99), want: 990 * time.Microsecond},
		{name: "p100", got: h.Quantile(1), want: 1000 * time.Microsecond},
		{name: "min", got: h.Min(), want: time.Microsecond},
		{name: "max", got: h.Max(), want: 1000 * time.Microsecond},
		{name: "mean", got: h.Mean(), want: 500500 * time.Nanosecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	var m Histogram
	m.Merge(&h)
	m.Record(5 * time.Second)
	if m.Count() != 1001 || m.Max() != 5*time.Second || m.Quantile(0.5) != 501*time.Microsecond {
		t.Errorf("merged: %s", m.String())
	}
	var total uint64
	for _, b := range m.Buckets() {
		total += b.Count
	}
	if total != 1001 {
		t.Errorf("bucket counts sum to %d, want 1001", total)
	}
	if m.Chart(5) == "" {
		t.Error("empty chart")
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		d += 777 * time.Nanosecond
		h.Record(d % (3 * time.Millisecond))
	}
}
