package engine

import (
	"net/netip"
	"time"
)

// RingSize is how many recent failures Engine.Failures can return.
const RingSize = 1024

// Failure is one recorded authentication failure.
type Failure struct {
	Time    time.Time  `json:"time"`
	Addr    netip.Addr `json:"addr"`
	Account string     `json:"account"`
	Method  string     `json:"method"`
	Code    int        `json:"code"`
}

// ring keeps the last RingSize failures. Not safe for concurrent use.
type ring struct {
	buf  [RingSize]Failure
	next int
	n    int
}

func (r *ring) add(f Failure) {
	r.buf[r.next] = f
	r.next = (r.next + 1) % RingSize
	if r.n < RingSize {
		r.n++
	}
}

// since returns the failures at or after t, oldest first.
func (r *ring) since(t time.Time) []Failure {
	var out []Failure
	start := (r.next - r.n + RingSize) % RingSize
	for i := range r.n {
		f := r.buf[(start+i)%RingSize]
		if !f.Time.Before(t) {
			out = append(out, f)
		}
	}
	return out
}
