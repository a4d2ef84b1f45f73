package anomaly

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// Model is a trained detector: the forest and, per feature, the median and
// 99th percentile of the training attempts, which decide which features a
// reason names. A Model is immutable and safe for concurrent use.
type Model struct {
	forest  *Forest
	p50     Vector
	p99     Vector
	trained time.Time
	rows    int
}

// Forest returns the model's forest.
func (m *Model) Forest() *Forest { return m.forest }

// Trained reports the time of the newest training event.
func (m *Model) Trained() time.Time { return m.trained }

// Rows reports how many call attempts the forest was sampled from.
func (m *Model) Rows() int { return m.rows }

// reservoirSize bounds the attempts a Trainer keeps (Algorithm R): enough
// for 100 trees of 256 without holding the whole window.
const reservoirSize = 1 << 15

// Trainer learns a Baseline and samples the feature vectors of its call
// attempts for the forest. Feed it the window's events in time order, then
// call Fit.
type Trainer struct {
	b      *Baseline
	rng    *rand.Rand
	rows   [][]float64
	seen   int
	warmup int64 // attempts before this time are learnt but not sampled
	start  int64
	last   time.Time
	cfg    Config
}

// NewTrainer returns a Trainer that learns into b. The first quarter of the
// window (at most 7 days) only warms the baseline up: in it every
// destination of every account is new, which is not what normal looks like.
func NewTrainer(b *Baseline) *Trainer {
	s := b.cfg.Seed
	return &Trainer{b: b, cfg: b.cfg, rng: rand.New(rand.NewPCG(s, s+1)),
		warmup: int64(min(b.cfg.Window/4, 7*24*time.Hour) / time.Second)}
}

// Observe learns from ev and samples it when it is a call attempt.
func (t *Trainer) Observe(ev event.Event) {
	if ev.Base().Time.After(t.last) {
		t.last = ev.Base().Time
	}
	ca, ok := ev.(*event.CallAttempt)
	if !ok {
		t.b.Observe(ev)
		return
	}
	v, _ := t.b.Attempt(ca)
	now := ca.Time.Unix()
	if t.start == 0 {
		t.start = now
	}
	if now < t.start+t.warmup {
		return
	}
	t.seen++
	if len(t.rows) < reservoirSize {
		t.rows = append(t.rows, slices.Clone(v[:]))
		return
	}
	if j := t.rng.IntN(t.seen); j < reservoirSize {
		copy(t.rows[j], v[:])
	}
}

// Fit builds the model from the sampled attempts. It fails when there are
// fewer than 32 (about a day of one busy account after the warm-up).
func (t *Trainer) Fit() (*Model, error) {
	if len(t.rows) < 32 {
		return nil, fmt.Errorf("training: %d call attempts after the warm-up, need at least 32: give a longer window of events", len(t.rows))
	}
	f, err := Train(t.rows, ForestOptions{Trees: t.cfg.Trees, Sample: t.cfg.Sample, Seed: t.cfg.Seed, Weights: featureWeights[:]})
	if err != nil {
		return nil, err
	}
	m := &Model{forest: f, trained: t.last, rows: t.seen}
	col := make([]float64, len(t.rows))
	for j := range NumFeatures {
		for i, r := range t.rows {
			col[i] = r[j]
		}
		slices.Sort(col)
		m.p50[j] = col[len(col)/2]
		m.p99[j] = col[min(len(col)-1, len(col)*99/100)]
	}
	return m, nil
}

// Result is the score of one call attempt.
type Result struct {
	// Score is the forest's anomaly score in [0, 1].
	Score float64
	// Reasons say, most unusual first, which features made the attempt
	// unusual; empty when none is beyond what 99 % of training attempts
	// showed.
	Reasons []string
	// Features is the vector scored.
	Features Vector
}

// Score scores a call attempt's features and explains them.
func (m *Model) Score(v Vector, ctx *Context) Result {
	r := Result{Score: m.forest.Score(v[:]), Features: v}
	if ctx != nil {
		r.Reasons = m.explain(v, ctx)
	}
	return r
}

// errModel is wrapped by every model file error.
var errModel = errors.New("model file")
