package anomaly

import (
	"fmt"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
)

// trained returns a baseline of 50 office accounts and a model trained on
// them.
func trained(b *testing.B, cache bool) (*Baseline, *Model) {
	b.Helper()
	opts := Options{Config: Config{Window: 14 * 24 * time.Hour, Country: "GB"}}
	if !cache {
		n, err := dest.New(dest.Options{DefaultCountry: "GB", CacheSize: -1})
		if err != nil {
			b.Fatal(err)
		}
		opts.Normalizer = n
	}
	bl, err := NewBaseline(opts)
	if err != nil {
		b.Fatal(err)
	}
	tr := NewTrainer(bl)
	for i := range 50 {
		for _, ev := range officeEvents(fmt.Sprint(1000 + i)) {
			tr.Observe(ev)
		}
	}
	m, err := tr.Fit()
	if err != nil {
		b.Fatal(err)
	}
	return bl, m
}

// BenchmarkScoreAttempt is the work per call attempt: features from the
// account's window (destination read through the normaliser's cache),
// learning, the forest's score and the reasons.
func BenchmarkScoreAttempt(b *testing.B) {
	bl, m := trained(b, true)
	at := day4.Add(10 * time.Hour)
	dests := make([]string, 64)
	for i := range dests {
		dests[i] = fmt.Sprintf("+4420794600%02d", i)
	}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ev := call(at.Add(time.Duration(i)*time.Second), fmt.Sprint(1000+i%50), dests[i%len(dests)], homeSrc, homeUA)
		v, c := bl.Attempt(ev)
		m.Score(v, &c)
		i++
	}
}

// BenchmarkScoreAttemptNewNumber reads every number with libphonenumber
// (the normaliser's cache off), as for a number never dialled before: the
// worst case.
func BenchmarkScoreAttemptNewNumber(b *testing.B) {
	bl, m := trained(b, false)
	at := day4.Add(10 * time.Hour)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ev := call(at.Add(time.Duration(i)*time.Second), fmt.Sprint(1000+i%50), fmt.Sprintf("+44207946%04d", i%10000), homeSrc, homeUA)
		v, c := bl.Attempt(ev)
		m.Score(v, &c)
		i++
	}
}

// BenchmarkForestScore is the forest alone: 100 trees of ψ = 256.
func BenchmarkForestScore(b *testing.B) {
	f, err := Train(cluster(10000, int(NumFeatures), 1), ForestOptions{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float64, NumFeatures)
	b.ReportAllocs()
	for b.Loop() {
		f.Score(x)
	}
}

// BenchmarkForestTrain builds 100 trees from a full reservoir.
func BenchmarkForestTrain(b *testing.B) {
	data := cluster(reservoirSize, int(NumFeatures), 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Train(data, ForestOptions{Seed: 1, Weights: featureWeights[:]}); err != nil {
			b.Fatal(err)
		}
	}
}
