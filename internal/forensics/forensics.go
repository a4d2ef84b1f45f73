// Package forensics turns stored events into an incident report: who
// attacked, which accounts they went after, which accounts they got into,
// what expensive destinations were called, and when it all happened. It is
// pure: the caller queries the store and hands over the records.
package forensics

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/store"
)

// DefaultExpensivePrefixes are destination prefixes that cost money when
// fraudsters dial them: international (00, +, 011 and 9011 with an outside
// line digit) and premium-rate (900, 1900).
var DefaultExpensivePrefixes = []string{"00", "+", "011", "9011", "900", "1900"}

// Options tune Analyze. The zero value uses the defaults.
type Options struct {
	// ExpensivePrefixes replaces DefaultExpensivePrefixes when set.
	ExpensivePrefixes []string
	// MinFailures is how many failures an account must have had before a
	// success from an attacking address marks it compromised. Default 3,
	// so a phone's single typo does not.
	MinFailures int
	// Top caps the sources, accounts and destinations listed. Default 10.
	Top int
	// TimelineMax caps the timeline. Default 100; the
	// middle is cut when longer.
	TimelineMax int
}

// Report is the incident report.
type Report struct {
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Events int       `json:"events"`
	// Sources are the attacking sources, worst first.
	Sources []Source `json:"sources"`
	// Accounts are the accounts attacked, most failures first.
	Accounts []Account `json:"accounts"`
	// Compromised are accounts that succeeded from an attacking address
	// after failures: their passwords are probably known.
	Compromised []Compromise `json:"compromised"`
	// Destinations are expensive destinations called, costliest first.
	Destinations []Destination `json:"destinations"`
	// Timeline lists the notable moments in time order.
	Timeline []Entry `json:"timeline"`
}

// Source is one attacking address.
type Source struct {
	IP netip.Addr `json:"ip"`
	// Failures are authentication failures, Verdicts rejected or dropped
	// requests, Bans bans placed on it.
	Failures int `json:"failures"`
	Verdicts int `json:"verdicts"`
	Bans     int `json:"bans"`
	// Accounts is how many distinct accounts it failed on.
	Accounts   int       `json:"accounts"`
	UserAgents []string  `json:"user_agents,omitempty"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
}

// Account is one attacked account.
type Account struct {
	Account  string `json:"account"`
	Failures int    `json:"failures"`
	Sources  int    `json:"sources"`
}

// Compromise is a success after failures from an attacking address.
type Compromise struct {
	Account  string     `json:"account"`
	IP       netip.Addr `json:"ip"`
	At       time.Time  `json:"at"`
	How      string     `json:"how"` // "register" or "call_answered"
	Failures int        `json:"failures"`
}

// Destination is one expensive number called.
type Destination struct {
	Destination string        `json:"destination"`
	Prefix      string        `json:"prefix"`
	Attempts    int           `json:"attempts"`
	Answered    int           `json:"answered"`
	Billsec     time.Duration `json:"billsec"`
	Accounts    []string      `json:"accounts"`
}

// Entry is one line of the timeline.
type Entry struct {
	Time time.Time `json:"time"`
	What string    `json:"what"`
}

// Analyze builds the report from recs (any order).
func Analyze(recs []store.Record, o Options) Report {
	o.MinFailures = cmp.Or(o.MinFailures, 3)
	o.Top = cmp.Or(o.Top, 10)
	o.TimelineMax = cmp.Or(o.TimelineMax, 100)
	if o.ExpensivePrefixes == nil {
		o.ExpensivePrefixes = DefaultExpensivePrefixes
	}
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b store.Record) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Seq, b.Seq))
	})
	a := newAnalysis(o)
	for i := range recs {
		a.add(&recs[i])
	}
	rep := a.report()
	rep.Events = len(recs)
	if len(recs) > 0 {
		rep.Since, rep.Until = recs[0].Time, recs[len(recs)-1].Time
	}
	return rep
}

// expensivePrefix returns the longest prefix of dest in prefixes, or "".
func expensivePrefix(dest string, prefixes []string) string {
	best := ""
	for _, p := range prefixes {
		if strings.HasPrefix(dest, p) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// top sorts s with less and cuts it to n.
func top[T any](s []T, n int, cmpf func(a, b T) int) []T {
	slices.SortFunc(s, cmpf)
	if len(s) > n {
		s = s[:n]
	}
	return s
}
