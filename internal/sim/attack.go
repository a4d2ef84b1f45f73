package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Attack holds the settings every attacker shares.
type Attack struct {
	// Target is the SIP server (or guard) under attack.
	Target netip.AddrPort
	// Source is the attacker's own loopback address; requests leave from
	// Source on an ephemeral port.
	Source netip.Addr
	// Timeout is how long to wait for each answer; zero means 500 ms.
	Timeout time.Duration
	// Interval is the pause between requests; zero means none.
	Interval time.Duration
	// Silence is how many unanswered requests in a row make the attacker
	// conclude it is banned and stop; zero means 3.
	Silence int
	// Persist keeps sending the whole list after the target went silent,
	// as the real tools do (they do not look for bans); Banned is still
	// judged by Silence.
	Persist bool
}

func (a Attack) timeout() time.Duration {
	if a.Timeout > 0 {
		return a.Timeout
	}
	return 500 * time.Millisecond
}

func (a Attack) silence() int {
	if a.Silence > 0 {
		return a.Silence
	}
	return 3
}

// AttackReport is what one attacker saw.
type AttackReport struct {
	Kind   string     // scanner, cracker, enumerator or flooder
	Source netip.Addr // the attacker's address
	Sent   int        // requests sent
	// Answers counts final responses by status code.
	Answers map[int]int
	// Unanswered counts requests that got no final response in time.
	Unanswered int
	// Banned is true when answers stopped for good: the run ended with at
	// least Attack.Silence unanswered requests in a row.
	Banned bool
	// AnsweredBeforeBan is how many requests had been sent when answers
	// stopped for good (meaningful when Banned).
	AnsweredBeforeBan int
	// Found lists what the attack found: the cracked password, or the
	// extensions the enumerator believes exist.
	Found []string
	// Elapsed is the wall-clock duration of the attack.
	Elapsed time.Duration
	// BannedAfter is the time from the attack's start to the sending of
	// the first request of the final unanswered run (meaningful when
	// Banned): how long the target took to stop answering.
	BannedAfter time.Duration
	// Connected counts calls the attack got answered (200 to an INVITE).
	Connected int
}

// String summarises the report on one line.
func (r AttackReport) String() string {
	s := fmt.Sprintf("%-10s from %-15s sent %4d, answers %v, unanswered %d", r.Kind, r.Source, r.Sent, r.Answers, r.Unanswered)
	if r.Banned {
		s += fmt.Sprintf(", silenced after %d requests", r.AnsweredBeforeBan)
	}
	if len(r.Found) > 0 {
		s += fmt.Sprintf(", found %q", r.Found)
	}
	return s
}

// tally keeps an AttackReport up to date while requests go out.
type tally struct {
	r       AttackReport
	limit   int
	run     int // current run of unanswered requests
	runFrom int // Sent when the current run began
	runAt   time.Duration
	persist bool
	start   time.Time
}

func newTally(kind string, a Attack) *tally {
	return &tally{
		r:       AttackReport{Kind: kind, Source: a.Source, Answers: map[int]int{}},
		limit:   a.silence(),
		persist: a.Persist,
		start:   time.Now(),
	}
}

// record notes the outcome of one request and reports whether the attacker
// should stop because it looks banned.
func (t *tally) record(code int, err error) (stop bool, fatal error) {
	t.r.Sent++
	switch {
	case errors.Is(err, errSilence):
		if t.run == 0 {
			t.runFrom = t.r.Sent - 1
			t.runAt = time.Since(t.start)
		}
		t.run++
		t.r.Unanswered++
		return !t.persist && t.run >= t.limit, nil
	case err != nil:
		return true, err
	}
	t.run = 0
	t.r.Answers[code]++
	return false, nil
}

func (t *tally) done() AttackReport {
	if t.run >= t.limit {
		t.r.Banned = true
		t.r.AnsweredBeforeBan = t.runFrom
		t.r.BannedAfter = t.runAt
	}
	t.r.Elapsed = time.Since(t.start)
	return t.r
}

// pause waits for d or until ctx ends, reporting whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// add merges the counts of r, a run from the same source, into a.
func (a *AttackReport) add(r AttackReport) {
	a.Sent += r.Sent
	a.Unanswered += r.Unanswered
	a.Connected += r.Connected
	for c, n := range r.Answers {
		a.Answers[c] += n
	}
	a.Found = append(a.Found, r.Found...)
}
