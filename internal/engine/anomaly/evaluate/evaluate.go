// Package evaluate measures the anomaly detector offline: it trains on one
// event file, scores every call attempt of another, and, when the second
// is labelled, reports precision, recall, false-positive rate and calls
// until detection, beside static OpenSIPS-style thresholds on the same data.
package evaluate

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/event"
)

// Options configure Run.
type Options struct {
	// Config is the anomaly configuration; zero values take the defaults.
	Config anomaly.Config
	// Threshold is the score at which a call is flagged; 0 means
	// Config.Warn.
	Threshold float64
	// Static are the thresholds of the static comparison; zero means
	// DefaultStatic.
	Static Static
	// MaxCalls bounds the flagged calls listed per account; 0 means 5.
	MaxCalls int
}

// Report is the result of Run.
type Report struct {
	Threshold float64 `json:"threshold"`
	Train     Stats   `json:"train"`
	Test      Stats   `json:"test"`
	// Flagged lists the accounts with a call at or above Threshold, highest
	// score first.
	Flagged []Account `json:"flagged"`
	// Labelled is true when the test file marks fraud; the metrics below
	// are set only then.
	Labelled bool     `json:"labelled"`
	Anomaly  *Metrics `json:"anomaly,omitempty"`
	Static   *Metrics `json:"static,omitempty"`
	// Sweep gives the anomaly metrics at other thresholds, to tune warn
	// and block.
	Sweep []Metrics `json:"sweep,omitempty"`
	// ScoreMicros is the mean time to score one call attempt, features
	// included.
	ScoreMicros float64 `json:"score_us"`
}

// Stats describe one file.
type Stats struct {
	Events   int     `json:"events"`
	Attempts int     `json:"call_attempts"`
	Accounts int     `json:"accounts"`
	Seconds  float64 `json:"seconds"` // training or scoring time
}

// Account is one flagged account.
type Account struct {
	Account  string  `json:"account"`
	Fraud    bool    `json:"fraud,omitempty"`
	Pattern  string  `json:"pattern,omitempty"`
	MaxScore float64 `json:"max_score"`
	Flagged  int     `json:"flagged_calls"`
	Calls    []Call  `json:"calls"`
}

// Call is one flagged call attempt.
type Call struct {
	Time        time.Time `json:"time"`
	Destination string    `json:"destination"`
	Score       float64   `json:"score"`
	Fraud       bool      `json:"fraud,omitempty"`
	Reasons     []string  `json:"reasons"`
}

// Metrics are the detection quality at one threshold.
type Metrics struct {
	Threshold      float64 `json:"threshold,omitempty"`
	FraudAccounts  int     `json:"fraud_accounts"`
	NormalAccounts int     `json:"normal_accounts"`
	Detected       int     `json:"detected"`        // fraud accounts flagged
	FalseAlarms    int     `json:"false_positives"` // normal accounts flagged
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	FPR            float64 `json:"false_positive_rate"`
	// CallPrecision and CallRecall count call attempts, not accounts.
	CallPrecision float64 `json:"call_precision"`
	CallRecall    float64 `json:"call_recall"`
	// MedianCalls is the median, over detected fraud accounts, of the
	// fraudulent call attempts up to and including the first flagged one.
	MedianCalls float64        `json:"median_calls_to_detect"`
	MaxCalls    int            `json:"max_calls_to_detect"`
	Missed      []string       `json:"missed,omitempty"` // fraud accounts never flagged
	ByPattern   map[string]int `json:"detected_by_pattern,omitempty"`
	Patterns    map[string]int `json:"fraud_by_pattern,omitempty"`
	FalseNames  []string       `json:"false_positive_accounts,omitempty"`
}

// scored is one test call attempt with its score.
type scored struct {
	account string
	fraud   bool
	pattern string
	score   float64
	static  bool
	ev      *event.CallAttempt
	res     anomaly.Result
}

// Run trains on train and scores test, returning the report and the
// trained model. test's events must follow train's in time (the baseline
// carries on from the training window).
func Run(train, test []Labelled, opts Options) (*Report, *anomaly.Model, error) {
	cfg := opts.Config.WithDefaults()
	if cfg.Warn == 0 {
		cfg.Warn, cfg.Block = anomaly.DefaultWarn, anomaly.DefaultBlock
	}
	th := opts.Threshold
	if th == 0 {
		th = cfg.Warn
	}
	if !(th > 0 && th <= 1) {
		return nil, nil, fmt.Errorf("threshold %v is not between 0 and 1", th)
	}
	if opts.MaxCalls == 0 {
		opts.MaxCalls = 5
	}
	b, err := anomaly.NewBaseline(anomaly.Options{Config: cfg})
	if err != nil {
		return nil, nil, err
	}
	rep := &Report{Threshold: th}
	start := time.Now()
	tr := anomaly.NewTrainer(b)
	accounts := map[string]bool{}
	for _, l := range train {
		tr.Observe(l.Event)
		count(&rep.Train, l.Event, accounts)
	}
	m, err := tr.Fit()
	if err != nil {
		return nil, nil, err
	}
	rep.Train.Accounts = len(accounts)
	rep.Train.Seconds = time.Since(start).Seconds()

	st := newStatic(opts.Static)
	var calls []scored
	clear(accounts)
	start = time.Now()
	for _, l := range test {
		count(&rep.Test, l.Event, accounts)
		if l.Fraud {
			rep.Labelled = true
		}
		ca, ok := l.Event.(*event.CallAttempt)
		if !ok {
			b.Observe(l.Event)
			st.observe(l.Event)
			continue
		}
		v, c := b.Attempt(ca)
		res := m.Score(v, &c)
		calls = append(calls, scored{account: ca.Account, fraud: l.Fraud, pattern: l.Pattern, score: res.Score,
			static: st.attempt(ca), ev: ca, res: res})
	}
	rep.Test.Seconds = time.Since(start).Seconds()
	rep.Test.Accounts = len(accounts)
	if len(calls) > 0 {
		rep.ScoreMicros = rep.Test.Seconds * 1e6 / float64(len(calls))
	}
	rep.Flagged = flagged(calls, th, opts.MaxCalls)
	if rep.Labelled {
		rep.Anomaly = metrics(calls, func(s *scored) bool { return s.score >= th })
		rep.Anomaly.Threshold = th
		rep.Static = metrics(calls, func(s *scored) bool { return s.static })
		for t := 0.50; t <= 0.801; t += 0.025 {
			mt := metrics(calls, func(s *scored) bool { return s.score >= t })
			mt.Threshold = float64(int(t*1000+0.5)) / 1000
			mt.Missed, mt.FalseNames, mt.ByPattern, mt.Patterns = nil, nil, nil, nil
			rep.Sweep = append(rep.Sweep, *mt)
		}
	}
	return rep, m, nil
}

func count(s *Stats, ev event.Event, accounts map[string]bool) {
	s.Events++
	if ca, ok := ev.(*event.CallAttempt); ok {
		s.Attempts++
		accounts[ca.Account] = true
	}
}

// flagged groups the calls at or above th by account.
func flagged(calls []scored, th float64, maxCalls int) []Account {
	byAcc := map[string]*Account{}
	var order []string
	for i := range calls {
		c := &calls[i]
		if c.score < th {
			continue
		}
		a := byAcc[c.account]
		if a == nil {
			a = &Account{Account: c.account}
			byAcc[c.account] = a
			order = append(order, c.account)
		}
		a.Flagged++
		a.MaxScore = max(a.MaxScore, c.score)
		if c.fraud {
			a.Fraud, a.Pattern = true, c.pattern
		}
		if len(a.Calls) < maxCalls {
			a.Calls = append(a.Calls, Call{Time: c.ev.Time, Destination: c.ev.Destination, Score: c.score, Fraud: c.fraud, Reasons: c.res.Reasons})
		}
	}
	out := make([]Account, 0, len(order))
	for _, k := range order {
		out = append(out, *byAcc[k])
	}
	slices.SortStableFunc(out, func(a, b Account) int {
		switch {
		case a.MaxScore > b.MaxScore:
			return -1
		case a.MaxScore < b.MaxScore:
			return 1
		}
		return 0
	})
	return out
}

// metrics judges flag against the labels. An account is fraudulent when any
// of its test calls is labelled fraud.
func metrics(calls []scored, flag func(*scored) bool) *Metrics {
	type acc struct {
		fraud, flagged bool
		pattern        string
		fraudCalls     int
		detectedAt     int
	}
	accs := map[string]*acc{}
	var tpCalls, fpCalls, fraudCalls int
	for i := range calls {
		c := &calls[i]
		a := accs[c.account]
		if a == nil {
			a = &acc{}
			accs[c.account] = a
		}
		f := flag(c)
		if c.fraud {
			fraudCalls++
			a.fraud, a.pattern = true, c.pattern
			a.fraudCalls++
			if f && a.detectedAt == 0 {
				a.detectedAt = a.fraudCalls
			}
		}
		if f {
			a.flagged = true
			if c.fraud {
				tpCalls++
			} else {
				fpCalls++
			}
		}
	}
	m := &Metrics{ByPattern: map[string]int{}, Patterns: map[string]int{}}
	var toDetect []int
	names := make([]string, 0, len(accs))
	for k := range accs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		a := accs[k]
		switch {
		case a.fraud:
			m.FraudAccounts++
			m.Patterns[a.pattern]++
			if a.detectedAt > 0 {
				m.Detected++
				m.ByPattern[a.pattern]++
				toDetect = append(toDetect, a.detectedAt)
				m.MaxCalls = max(m.MaxCalls, a.detectedAt)
			} else {
				m.Missed = append(m.Missed, k)
			}
		default:
			m.NormalAccounts++
			if a.flagged {
				m.FalseAlarms++
				m.FalseNames = append(m.FalseNames, k)
			}
		}
	}
	m.Precision = ratio(m.Detected, m.Detected+m.FalseAlarms)
	m.Recall = ratio(m.Detected, m.FraudAccounts)
	m.FPR = ratio(m.FalseAlarms, m.NormalAccounts)
	m.CallPrecision = ratio(tpCalls, tpCalls+fpCalls)
	m.CallRecall = ratio(tpCalls, fraudCalls)
	if len(toDetect) > 0 {
		slices.Sort(toDetect)
		n := len(toDetect)
		if n%2 == 1 {
			m.MedianCalls = float64(toDetect[n/2])
		} else {
			m.MedianCalls = float64(toDetect[n/2-1]+toDetect[n/2]) / 2
		}
	}
	return m
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
