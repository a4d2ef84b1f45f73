package sim

import (
	"fmt"
	"math/bits"
	"strings"
	"time"
)

// Histogram records durations with microsecond resolution: every value
// below 1,024 µs has its own bucket, larger values keep ten significant
// bits (relative error under 0.2 %). Values above about 67 s share the top
// bucket. The zero value is ready to use; it is not safe for concurrent use.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	histLinear   = 1024 // exact µs buckets
	histHalf     = 512  // buckets per power of two above that
	histMaxShift = 16   // up to 2^26 µs ≈ 67 s
	histBuckets  = histLinear + histMaxShift*histHalf
)

func bucketOf(us uint64) int {
	if us < histLinear {
		return int(us)
	}
	shift := bits.Len64(us) - 10
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return histLinear + (shift-1)*histHalf + int(us>>shift) - histHalf
}

// bucketLow returns the smallest µs value of bucket i.
func bucketLow(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	i -= histLinear
	shift := i/histHalf + 1
	return uint64(i%histHalf+histHalf) << shift
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds all values recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return h.max }

// Min returns the smallest value recorded (exact).
func (h *Histogram) Min() time.Duration { return h.min }

// Mean returns the arithmetic mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1) as the lower
// bound of its bucket, clamped to [Min, Max]; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(bucketLow(i)) * time.Microsecond
			return min(max(d, h.min.Truncate(time.Microsecond)), h.max)
		}
	}
	return h.max
}

// Bucket is one non-empty histogram bucket: values in [Low, High).
type Bucket struct {
	Low, High time.Duration
	Count     uint64
}

// Buckets returns the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		high := time.Duration(bucketLow(i+1)) * time.Microsecond
		if i == histBuckets-1 {
			high = h.max + time.Microsecond
		}
		out = append(out, Bucket{Low: time.Duration(bucketLow(i)) * time.Microsecond, High: high, Count: c})
	}
	return out
}

// String summarises the distribution on one line.
func (h *Histogram) String() string {
	return fmt.Sprintf("n=%d min=%v p50=%v p90=%v p99=%v p99.9=%v max=%v mean=%v",
		h.n, h.Min(), h.Quantile(0.5), h.Quantile(0.9), h.Quantile(0.99), h.Quantile(0.999), h.Max(), h.Mean())
}

// Chart renders the distribution as text rows "low–high count bar",
// grouping buckets into at most rows rows of equal count range.
func (h *Histogram) Chart(rows int) string {
	bs := h.Buckets()
	if len(bs) == 0 || rows <= 0 {
		return ""
	}
	per := (len(bs) + rows - 1) / rows
	var b strings.Builder
	var peak uint64
	type row struct {
		lo, hi time.Duration
		n      uint64
	}
	var rs []row
	for i := 0; i < len(bs); i += per {
		r := row{lo: bs[i].Low}
		for _, x := range bs[i:min(i+per, len(bs))] {
			r.n += x.Count
			r.hi = x.High
		}
		peak = max(peak, r.n)
		rs = append(rs, r)
	}
	for _, r := range rs {
		bar := int(40 * r.n / peak)
		fmt.Fprintf(&b, "%10v – %-10v %8d %s\n", r.lo, r.hi, r.n, strings.Repeat("#", bar))
	}
	return b.String()
}
