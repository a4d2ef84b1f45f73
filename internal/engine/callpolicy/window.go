package callpolicy

import "time"

// window is a sliding window of fixed buckets: n buckets of width each,
// summed over the last n*width. Buckets are cleared as time moves past
// them, so the window resets by time alone, whichever rule or call touched
// it last (OpenSIPS fraud_detection resets its interval counters only when
// a rule matches; see the README). A running total makes sum O(1); moving
// forward clears at most n buckets.
type window struct {
	width int64 // nanoseconds
	last  int64 // newest bucket index seen
	v     []int64
	total int64
}

func newWindow(span time.Duration, n int) *window {
	return &window{width: int64(span) / int64(n), v: make([]int64, n)}
}

// advance moves the window's end to bucket b.
func (w *window) advance(b int64) {
	if b <= w.last {
		return
	}
	n := int64(len(w.v))
	if b-w.last >= n {
		clear(w.v)
		w.total = 0
	} else {
		for i := w.last + 1; i <= b; i++ {
			j := i % n
			w.total -= w.v[j]
			w.v[j] = 0
		}
	}
	w.last = b
}

// add adds x at now. A time older than the window is ignored.
func (w *window) add(now time.Time, x int64) {
	b := now.UnixNano() / w.width
	w.advance(b)
	if b <= w.last-int64(len(w.v)) {
		return
	}
	w.v[b%int64(len(w.v))] += x
	w.total += x
}

// sum returns the total over the window ending at now (or at the newest
// time seen, when now is older).
func (w *window) sum(now time.Time) int64 {
	w.advance(now.UnixNano() / w.width)
	return w.total
}
