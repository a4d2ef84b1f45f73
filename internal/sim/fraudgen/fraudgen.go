// Package fraudgen generates labelled call traffic for the anomaly
// detector: weeks of normal traffic for a few hundred accounts with
// office-hour, night-shift and outbound-campaign profiles, and, in the test
// period, fraud patterns on some of them. Output is event files in the
// replay format, fraudulent events marked "label": "fraud" with their
// "pattern". The same Options (seed included) give the same bytes.
package fraudgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// Patterns are the fraud patterns, in the order accounts are given them.
var Patterns = []string{"night_burst", "premium_drip", "new_country", "sequential", "wangiri_callback", "hijack"}

// Evasions are patterns of an attacker who knows the model, added with
// Options.Evasion: "mimic" calls ordinary numbers in a country the account
// already calls, at its hours and volume, from its phone; "warmup" makes
// one premium call a week through the training period before a drip;
// "spread" makes two calls from each of many accounts to a country nobody
// calls.
var Evasions = []string{"mimic", "warmup", "spread"}

// Options configure Generate.
type Options struct {
	// Seed fixes every random choice.
	Seed uint64
	// Accounts is the number of accounts (default 300).
	Accounts int
	// TrainDays and TestDays are the lengths of the two files (default 28
	// and 7).
	TrainDays, TestDays int
	// FraudPerPattern is how many accounts get each fraud pattern in the
	// test period (default 5).
	FraudPerPattern int
	// Start is the first day, a Monday at 00:00 UTC by default
	// (2026-01-05).
	Start time.Time
	// Noise adds normal surprises to the test period: accounts that call a
	// common foreign country for the first time or move to a new network
	// (default on; set NoNoise for a clean set).
	NoNoise bool
	// Evasion adds the Evasions patterns, FraudPerPattern accounts each
	// (four times that for spread).
	Evasion bool
}

// Summary says what was generated.
type Summary struct {
	Accounts      int            `json:"accounts"`
	Profiles      map[string]int `json:"profiles"`
	FraudAccounts map[string]int `json:"fraud_accounts"` // by pattern
	TrainEvents   int            `json:"train_events"`
	TestEvents    int            `json:"test_events"`
	FraudEvents   int            `json:"fraud_events"`
}

// Generate writes the training period to train and the test period to test.
func Generate(opts Options, train, test io.Writer) (*Summary, error) {
	if opts.Accounts == 0 {
		opts.Accounts = 300
	}
	if opts.TrainDays == 0 {
		opts.TrainDays = 28
	}
	if opts.TestDays == 0 {
		opts.TestDays = 7
	}
	if opts.FraudPerPattern == 0 {
		opts.FraudPerPattern = 5
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	nFraud := opts.FraudPerPattern * len(Patterns)
	if opts.Evasion {
		nFraud += opts.FraudPerPattern * (len(Evasions) + 3)
	}
	switch {
	case opts.Accounts < 1 || opts.Accounts > 60000:
		return nil, errors.New("fraudgen: accounts must be 1-60000")
	case opts.TrainDays < 1 || opts.TestDays < 1 || opts.TrainDays+opts.TestDays > 400:
		return nil, errors.New("fraudgen: days must be positive and at most 400 in all")
	case nFraud > opts.Accounts/2:
		return nil, fmt.Errorf("fraudgen: %d fraud accounts need at least %d accounts", nFraud, 2*nFraud)
	}
	g := &gen{rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)), opts: opts,
		sum: &Summary{Accounts: opts.Accounts, Profiles: map[string]int{}, FraudAccounts: map[string]int{}}}
	g.makeAccounts()
	g.assignFraud()
	tw, sw := bufio.NewWriterSize(train, 1<<16), bufio.NewWriterSize(test, 1<<16)
	var carry []rec
	days := opts.TrainDays + opts.TestDays
	for d := 0; d < days; d++ {
		day := opts.Start.AddDate(0, 0, d)
		recs := carry
		for _, a := range g.accts {
			recs = g.day(recs, a, day, d >= opts.TrainDays, d-opts.TrainDays)
		}
		slices.SortStableFunc(recs, func(a, b rec) int { return a.t.Compare(b.t) })
		end := day.AddDate(0, 0, 1)
		i := 0
		for ; i < len(recs) && recs[i].t.Before(end); i++ {
			w, n := tw, &g.sum.TrainEvents
			if d >= opts.TrainDays {
				w, n = sw, &g.sum.TestEvents
			}
			if err := g.write(w, &recs[i]); err != nil {
				return nil, err
			}
			*n++
		}
		carry = append([]rec(nil), recs[i:]...)
	}
	if err := tw.Flush(); err != nil {
		return nil, fmt.Errorf("fraudgen: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return nil, fmt.Errorf("fraudgen: %w", err)
	}
	return g.sum, nil
}

// profile is a kind of normal account.
type profile int

const (
	office profile = iota
	nightShift
	campaign
)

var profileNames = [...]string{"office", "night_shift", "campaign"}

type acct struct {
	name    string
	prof    profile
	rate    float64 // calls per working hour
	intl    float64 // share of international calls
	foreign []string
	book    []string // usual numbers
	areas   []string // usual national ranges (E.164 prefixes)
	src     netip.Addr
	ua      string
	fraud   string // pattern, in the test period
	fday    int    // day of the test period the fraud starts
	noise   string // "country" or "network"
	nday    int
	seq     int
}

type gen struct {
	rng    *rand.Rand
	opts   Options
	accts  []*acct
	sum    *Summary
	callID int
}

// rec is one event to write.
type rec struct {
	t       time.Time
	ev      event.Event
	fraud   bool
	pattern string
}

var (
	areas    = []string{"+44207946", "+44161496", "+44117496", "+44131496", "+44113496", "+44289018", "+447700900"}
	foreign  = []string{"+3314", "+4930", "+1212", "+3491", "+3906", "+3120", "+861", "+35312"}
	agents   = []string{"Yealink SIP-T46S 66.86.0.15", "Grandstream GXP2170 1.0.11.3", "Polycom/6.4.3 VVX-450", "Cisco/SPA504G-7.6.2", "snom D785/10.1.73"}
	attacker = []string{"Zoiper rv2.10.18", "MicroSIP/3.21.3", "Linphone/5.2.0"}
)

func (g *gen) makeAccounts() {
	for i := range g.opts.Accounts {
		a := &acct{name: fmt.Sprintf("%d", 2000+i)}
		switch r := g.rng.Float64(); {
		case r < 0.75:
			a.prof, a.rate = office, 0.5+g.rng.Float64()*2.5
		case r < 0.9:
			a.prof, a.rate = nightShift, 0.5+g.rng.Float64()*2
		default:
			a.prof, a.rate = campaign, 8+g.rng.Float64()*12
		}
		g.sum.Profiles[profileNames[a.prof]]++
		if g.rng.Float64() < 0.4 {
			a.intl = 0.02 + g.rng.Float64()*0.2
			for range 1 + g.rng.IntN(3) {
				a.foreign = append(a.foreign, foreign[g.rng.IntN(len(foreign))])
			}
		}
		for range 1 + g.rng.IntN(3) {
			a.areas = append(a.areas, areas[g.rng.IntN(len(areas))])
		}
		for range 20 + g.rng.IntN(100) {
			a.book = append(a.book, g.number(a.areas[g.rng.IntN(len(a.areas))]))
		}
		// Ten accounts to a customer network.
		a.src = netip.AddrFrom4([4]byte{100, 64 + byte(i/10/250), byte(i / 10 % 250), byte(10 + i%10)})
		a.ua = agents[(i/10)%len(agents)]
		g.accts = append(g.accts, a)
	}
}

// assignFraud gives each pattern FraudPerPattern accounts (office and
// night-shift accounts: campaigns are covered by the noise) and marks
// some normal accounts for harmless surprises.
func (g *gen) assignFraud() {
	order := g.rng.Perm(len(g.accts))
	type want struct {
		pattern string
		n       int
	}
	var wants []want
	for _, p := range Patterns {
		wants = append(wants, want{p, g.opts.FraudPerPattern})
	}
	if g.opts.Evasion {
		wants = append(wants, want{"mimic", g.opts.FraudPerPattern}, want{"warmup", g.opts.FraudPerPattern}, want{"spread", 4 * g.opts.FraudPerPattern})
	}
	used := map[int]bool{}
	for _, w := range wants {
		for k := 0; k < w.n; {
			found := false
			for _, i := range order {
				a := g.accts[i]
				if used[i] || a.prof == campaign || (w.pattern == "mimic" && len(a.foreign) == 0) {
					continue
				}
				used[i], found = true, true
				a.fraud = w.pattern
				a.fday = g.rng.IntN(min(4, g.opts.TestDays)) // Monday to Thursday when the test starts on a Monday
				g.sum.FraudAccounts[a.fraud]++
				break
			}
			if !found {
				break
			}
			k++
		}
	}
	for _, i := range order {
		if a := g.accts[i]; a.fraud == "" && !g.opts.NoNoise && g.rng.Float64() < 0.04 {
			a.noise = []string{"country", "network"}[g.rng.IntN(2)]
			a.nday = g.rng.IntN(min(5, g.opts.TestDays)) // a working day
		}
	}
}

// number returns a random number in a range: the prefix padded to 13
// digits (+44 20 7946 0xxx and the like).
func (g *gen) number(prefix string) string {
	n := prefix
	for len(n) < 13 {
		n += string(rune('0' + g.rng.IntN(10)))
	}
	return n
}

// hours reports whether an account of profile p works at hour h of day wd.
func working(p profile, wd time.Weekday, h int) bool {
	switch p {
	case office:
		return wd >= time.Monday && wd <= time.Friday && h >= 9 && h < 18 && h != 12
	case nightShift:
		return h >= 22 || h < 6
	default:
		return wd >= time.Monday && wd <= time.Saturday && h >= 9 && h < 20
	}
}

// poisson draws from a Poisson distribution (Knuth; small means only).
func (g *gen) poisson(mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
