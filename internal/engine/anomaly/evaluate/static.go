package evaluate

import (
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// Static are per-account thresholds in the manner of OpenSIPS
// fraud_detection (one rule, empty prefix, all day): a call attempt is
// flagged when, counting it, the account reaches any of them. Zero
// disables a check, as in fraud_detection.
type Static struct {
	// CPM is calls per minute (a sliding 60 s window of attempts).
	CPM int `json:"cpm"`
	// Total is calls in the current day (UTC), reset at midnight.
	Total int `json:"total_calls"`
	// Concurrent is attempts not yet ended.
	Concurrent int `json:"concurrent_calls"`
	// Sequential is consecutive calls to the same number.
	Sequential int `json:"sequential_calls"`
	// Duration flags the account's next attempt after a call that lasted
	// at least this long (fraud_detection judges duration at the end of
	// the call only).
	Duration time.Duration `json:"call_duration"`
}

// DefaultStatic are warning-level values of the kind fraud_detection
// tutorials use for an office extension.
var DefaultStatic = Static{CPM: 5, Total: 100, Concurrent: 5, Sequential: 5, Duration: time.Hour}

type staticAcc struct {
	window  []int64 // attempt times within the last minute
	day     int64
	total   int
	open    map[string]bool
	last    string
	seq     int
	longEnd bool
}

type static struct {
	th   Static
	accs map[string]*staticAcc
}

func newStatic(th Static) *static {
	if th == (Static{}) {
		th = DefaultStatic
	}
	return &static{th: th, accs: map[string]*staticAcc{}}
}

func (s *static) acc(name string) *staticAcc {
	a := s.accs[name]
	if a == nil {
		a = &staticAcc{open: map[string]bool{}}
		s.accs[name] = a
	}
	return a
}

func (s *static) observe(ev event.Event) {
	if e, ok := ev.(*event.CallEnded); ok {
		a := s.acc(e.Account)
		delete(a.open, e.CallID)
		if s.th.Duration > 0 && e.Duration >= s.th.Duration {
			a.longEnd = true
		}
	}
}

// attempt counts a call attempt and reports whether a threshold is reached.
func (s *static) attempt(e *event.CallAttempt) bool {
	a := s.acc(e.Account)
	now := e.Time.Unix()
	keep := a.window[:0]
	for _, t := range a.window {
		if t > now-60 {
			keep = append(keep, t)
		}
	}
	a.window = append(keep, now)
	if d := now / 86400; d != a.day {
		a.day, a.total = d, 0
	}
	a.total++
	if len(a.open) < 1024 {
		a.open[e.CallID] = true
	}
	if e.Destination == a.last {
		a.seq++
	} else {
		a.last, a.seq = e.Destination, 1
	}
	hit := a.longEnd
	a.longEnd = false
	t := s.th
	return hit || (t.CPM > 0 && len(a.window) >= t.CPM) || (t.Total > 0 && a.total >= t.Total) ||
		(t.Concurrent > 0 && len(a.open) >= t.Concurrent) || (t.Sequential > 0 && a.seq >= t.Sequential)
}
