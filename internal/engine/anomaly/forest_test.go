package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestC(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want float64
	}{
		{0, 0},
		{1, 0},
		{2, 1},
		// 2(ln 2 + γ) − 2·2/3
		{3, 2*(math.Log(2)+eulerGamma) - 4.0/3},
		// The paper's ψ = 256: about 10.24.
		{256, 10.2448},
		{1 << 16, 21.3351},
	} {
		if got := C(tc.n); math.Abs(got-tc.want) > 1e-3 {
			t.Errorf("C(%d) = %.5f, want %.5f", tc.n, got, tc.want)
		}
	}
}

// cluster returns n points around the origin in dims dimensions.
func cluster(n, dims int, seed uint64) [][]float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, dims)
		for j := range out[i] {
			out[i][j] = r.NormFloat64()
		}
	}
	return out
}

func TestForestIsolatedScoresHigher(t *testing.T) {
	data := cluster(2000, 3, 7)
	f, err := Train(data, ForestOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f.Trees() != 100 || f.Sample() != 256 || f.Dims() != 3 {
		t.Fatalf("defaults: trees %d sample %d dims %d", f.Trees(), f.Sample(), f.Dims())
	}
	centre := f.Score([]float64{0, 0, 0})
	edge := f.Score([]float64{2.5, 0, 0})
	far := f.Score([]float64{8, -8, 8})
	inRange := f.Score([]float64{0, 3.2, 0})
	if !(centre < edge && edge < far) {
		t.Errorf("scores should grow with isolation: centre %.3f, edge %.3f, far %.3f", centre, edge, far)
	}
	if centre > 0.5 {
		t.Errorf("a point in the cluster scores %.3f, want at most 0.5", centre)
	}
	if far < 0.75 {
		t.Errorf("a point far outside scores %.3f, want at least 0.75", far)
	}
	if inRange <= centre {
		t.Errorf("a point at the cluster's edge scores %.3f, not above the centre's %.3f", inRange, centre)
	}
	// Mean over the training data is about 0.5 or below (paper, §3).
	var sum float64
	for _, p := range data[:500] {
		s := f.Score(p)
		if s < 0 || s > 1 {
			t.Fatalf("score %v outside [0, 1]", s)
		}
		sum += s
	}
	if mean := sum / 500; mean > 0.5 {
		t.Errorf("mean score of the training data %.3f, want at most 0.5", mean)
	}
}

func TestForestConstantFeatureIsolates(t *testing.T) {
	// The second feature is always 0 in training: a point with a 1 there
	// must stand out, which the paper's forest cannot see.
	data := cluster(1000, 2, 3)
	for _, p := range data {
		p[1] = 0
	}
	f, err := Train(data, ForestOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	normal, odd := f.Score([]float64{0, 0}), f.Score([]float64{0, 1})
	if odd < normal+0.2 {
		t.Errorf("unseen value on a constant feature scores %.3f against %.3f", odd, normal)
	}
}

func TestForestDeterministic(t *testing.T) {
	data := cluster(1000, 4, 11)
	a, _ := Train(data, ForestOptions{Seed: 42, Trees: 20})
	b, _ := Train(cluster(1000, 4, 11), ForestOptions{Seed: 42, Trees: 20})
	c, _ := Train(data, ForestOptions{Seed: 43, Trees: 20})
	same, differ := true, false
	for _, p := range cluster(50, 4, 99) {
		sa, sb, sc := a.Score(p), b.Score(p), c.Score(p)
		same = same && sa == sb
		differ = differ || sa != sc
	}
	if !same {
		t.Error("the same data and seed gave different scores")
	}
	if !differ {
		t.Error("another seed gave the same forest")
	}
}

func TestForestWeights(t *testing.T) {
	// Only feature 0 may be split on: feature 1's outliers go unseen.
	data := cluster(1000, 2, 5)
	f, err := Train(data, ForestOptions{Seed: 1, Weights: []float64{1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := f.Score([]float64{0, 0}), f.Score([]float64{0, 50}); a != b {
		t.Errorf("a feature of weight 0 changed the score: %.3f → %.3f", a, b)
	}
	if a, b := f.Score([]float64{0, 0}), f.Score([]float64{50, 0}); b < a+0.2 {
		t.Errorf("the weighted feature's outlier scores %.3f against %.3f", b, a)
	}
}

func TestTrainErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		data [][]float64
		opts ForestOptions
	}{
		"no data":      {nil, ForestOptions{}},
		"ragged":       {[][]float64{{1, 2}, {1}}, ForestOptions{}},
		"NaN":          {[][]float64{{1}, {math.NaN()}}, ForestOptions{}},
		"Inf":          {[][]float64{{1}, {math.Inf(1)}}, ForestOptions{}},
		"no features":  {[][]float64{{}, {}}, ForestOptions{}},
		"sample 1":     {[][]float64{{1}, {2}}, ForestOptions{Sample: 1}},
		"trees":        {[][]float64{{1}, {2}}, ForestOptions{Trees: maxTrees + 1}},
		"weights":      {[][]float64{{1}, {2}}, ForestOptions{Weights: []float64{1, 2}}},
		"zero weights": {[][]float64{{1}, {2}}, ForestOptions{Weights: []float64{0}}},
		"neg weight":   {[][]float64{{1, 1}, {2, 2}}, ForestOptions{Weights: []float64{-1, 2}}},
	} {
		if _, err := Train(tc.data, tc.opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestForestSmallSample(t *testing.T) {
	// Fewer rows than ψ: the sample is all of them and scores stay in range.
	f, err := Train([][]float64{{0}, {0.1}, {0.2}, {5}}, ForestOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f.Sample() != 4 {
		t.Errorf("sample %d, want 4", f.Sample())
	}
	if s := f.Score([]float64{5}); s <= f.Score([]float64{0.1}) || s > 1 {
		t.Errorf("outlier scores %.3f", s)
	}
	// A short vector counts its missing values as zero.
	if f.Score(nil) != f.Score([]float64{0}) {
		t.Error("missing values are not zero")
	}
}
