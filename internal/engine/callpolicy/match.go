package callpolicy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
)

// matcher is a compiled config.CallMatch. Every key that is set must
// match; empty matches every call (and, as an except, is never consulted).
type matcher struct {
	empty      bool
	dests      []dest.Pattern
	anyAccount bool
	// accounts holds the listed names; few is the same list when it is
	// short (a few string compares beat a map lookup).
	accounts map[string]struct{}
	few      []string
	sources  []netip.Prefix
	hours    bool
	from, to int // minutes after midnight, inclusive
	days     uint8
}

// call is what rules match: one call attempt, normalised once.
type call struct {
	names   *detector.Names
	account string
	src     netip.Addr
	dest    dest.Result
	// key is the destination counters use: the E.164 number, or the
	// normalised dial string of a number that is not public.
	key string
	now time.Time
}

func compileMatch(m config.CallMatch, n *dest.Normalizer, at string) (matcher, error) {
	c := matcher{empty: len(m.Destinations) == 0 && len(m.Accounts) == 0 && len(m.Sources) == 0 && m.Hours == "" && m.Days == ""}
	for i, d := range m.Destinations {
		p, err := n.ParsePattern(d)
		if err != nil {
			return c, fmt.Errorf("%s.destinations[%d]: %w", at, i, err)
		}
		c.dests = append(c.dests, p)
	}
	for _, a := range m.Accounts {
		if a == "*" {
			c.anyAccount = true
			continue
		}
		if c.accounts == nil {
			c.accounts = map[string]struct{}{}
		}
		c.accounts[detector.Normalize(a)] = struct{}{}
	}
	if len(c.accounts) <= 8 {
		for a := range c.accounts {
			c.few = append(c.few, a)
		}
	}
	for _, p := range m.Sources {
		c.sources = append(c.sources, netip.Prefix(p).Masked())
	}
	if m.Hours != "" {
		f, t, err := parseHours(m.Hours)
		if err != nil {
			return c, fmt.Errorf("%s.hours: %w", at, err)
		}
		c.hours, c.from, c.to = true, f, t
	}
	if m.Days != "" {
		d, err := parseDays(m.Days)
		if err != nil {
			return c, fmt.Errorf("%s.days: %w", at, err)
		}
		c.days = d
	}
	return c, nil
}

// match reports whether c covers the call. The cheapest keys go first:
// time of day and weekday, then sources, accounts, destinations.
func (m *matcher) match(c *call) bool {
	if m.hours {
		min := c.now.Hour()*60 + c.now.Minute()
		if m.from <= m.to {
			if min < m.from || min > m.to {
				return false
			}
		} else if min < m.from && min > m.to { // wraps midnight
			return false
		}
	}
	if m.days != 0 && m.days&(1<<uint(c.now.Weekday())) == 0 {
		return false
	}
	if len(m.sources) > 0 {
		ok := false
		for _, p := range m.sources {
			if p.Contains(c.src) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.accounts != nil || m.anyAccount {
		ok := m.anyAccount && c.account != ""
		for i := 0; !ok && i < c.names.Len(); i++ {
			n := c.names.At(i)
			if m.few != nil {
				for _, a := range m.few {
					if a == n {
						ok = true
						break
					}
				}
				continue
			}
			_, ok = m.accounts[n]
		}
		if !ok {
			return false
		}
	}
	if len(m.dests) > 0 {
		for _, p := range m.dests {
			if p.Match(c.dest) {
				return true
			}
		}
		return false
	}
	return true
}

// parseHours reads "HH:MM-HH:MM"; both ends are inclusive minutes.
func parseHours(s string) (from, to int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want HH:MM-HH:MM", s)
	}
	if from, err = parseClock(a); err != nil {
		return 0, 0, err
	}
	if to, err = parseClock(b); err != nil {
		return 0, 0, err
	}
	return from, to, nil
}

func parseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a time HH:MM", s)
	}
	return hh*60 + mm, nil
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func dayIndex(s string) (int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range dayNames {
		if s == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a day (mon, tue, wed, thu, fri, sat, sun)", s)
}

// parseDays reads "mon-fri" (a range, which may wrap: "fri-mon") or a
// list "sat,sun" of days and ranges, into a mask bit per time.Weekday.
func parseDays(s string) (uint8, error) {
	var mask uint8
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		i, err := dayIndex(a)
		if err != nil {
			return 0, err
		}
		j := i
		if isRange {
			if j, err = dayIndex(b); err != nil {
				return 0, err
			}
		}
		for k := i; ; k = (k + 1) % 7 {
			mask |= 1 << uint(k)
			if k == j {
				break
			}
		}
	}
	return mask, nil
}
