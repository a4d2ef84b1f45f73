package callpolicy

import "time"

// window is a sliding window of fixed buckets: n buckets of width each,
// summed over the last n*width. A bucket is reused when time moves past
// it, so the window resets by time alone, whichever rule or call touched
// it last (OpenSIPS fraud_detection resets its interval counters only when
// a rule matches; see the README).
type window struct {
	width int64 // nanoseconds
	at    []int64
	v     []int64
}

func newWindow(span time.Duration, n int) *window {
	return &window{width: int64(span) / int64(n), at: make([]int64, n), v: make([]int64, n)}
}

// add adds x at now.
func (w *window) add(now time.Time, x int64) {
	b := now.UnixNano() / w.width
	i := int(uint64(b) % uint64(len(w.at)))
	if w.at[i] != b {
		w.at[i], w.v[i] = b, 0
	}
	w.v[i] += x
}

// sum returns the total over the window ending at now.
func (w *window) sum(now time.Time) int64 {
	b := now.UnixNano() / w.width
	var s int64
	for i, at := range w.at {
		if at > b-int64(len(w.at)) && at <= b {
			s += w.v[i]
		}
	}
	return s
}
