package anomaly

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// eulerGamma is the Euler–Mascheroni constant, used by the harmonic number
// estimate in C.
const eulerGamma = 0.5772156649015329

// C is the average path length of an unsuccessful search in a binary
// search tree of n points (Liu, Ting & Zhou 2008, equation 1):
// 2H(n−1) − 2(n−1)/n with H(i) ≈ ln(i) + γ. C(2) is 1, C(n ≤ 1) is 0. It
// normalises path lengths so scores of forests with different subsample
// sizes compare.
func C(n int) float64 {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	}
	f := float64(n)
	return 2*(math.Log(f-1)+eulerGamma) - 2*(f-1)/f
}

// ForestOptions configure Train.
type ForestOptions struct {
	// Trees is the number of isolation trees; 0 means 100.
	Trees int
	// Sample is the subsample size ψ each tree is built on; 0 means 256.
	// The height limit is ceil(log2 ψ).
	Sample int
	// Seed makes training deterministic: the same data and seed give the
	// same forest.
	Seed uint64
	// Weights, when set (one per feature, none negative, some positive),
	// make a tree pick feature i for a split with probability proportional
	// to Weights[i] instead of uniformly. A feature picked more often
	// isolates its outliers in fewer splits.
	Weights []float64
}

// Forest is an Isolation Forest (Liu, Ting & Zhou 2008). Its zero value is
// not usable; build one with Train or read one with ReadModel. A Forest is
// immutable and safe for concurrent use.
//
// One departure from the paper, for data where most features are constant
// or nearly so (a normal account never calls a new country): every inner
// node remembers the range [lo, hi] its sample held on the split feature,
// and a point outside it ends its path there, one edge down, as a point
// alone in an empty leaf would. In the paper such a point goes on down with
// the training points nearest to it, so a value far beyond anything seen
// counts no more than the largest value seen; and a feature constant in a
// node's sample could not be split on at all. Points inside the range take
// the same path as in the paper.
type Forest struct {
	dims   int
	sample int
	trees  []tree
}

// tree is one isolation tree, nodes in flat arrays, root at 0. A node with
// feat < 0 is a leaf holding size training points; otherwise points with
// x[feat] < split go to left, the others to right. Children always have a
// larger index than their parent (ReadModel relies on it).
type tree struct {
	feat  []int16
	split []float64
	lo    []float64 // sample range on feat at inner nodes
	hi    []float64
	left  []int32
	right []int32
	size  []int32
}

// Dims reports the number of features the forest was trained on.
func (f *Forest) Dims() int { return f.dims }

// Trees reports the number of trees.
func (f *Forest) Trees() int { return len(f.trees) }

// Sample reports the subsample size ψ.
func (f *Forest) Sample() int { return f.sample }

// Train builds a forest from rows of data, each with the same number of
// features. It fails on no rows, ragged rows or values that are not finite.
func Train(data [][]float64, opts ForestOptions) (*Forest, error) {
	if opts.Trees == 0 {
		opts.Trees = 100
	}
	if opts.Sample == 0 {
		opts.Sample = 256
	}
	if opts.Trees < 1 || opts.Trees > maxTrees || opts.Sample < 2 || opts.Sample > maxSample {
		return nil, fmt.Errorf("training forest: trees must be 1-%d and sample 2-%d", maxTrees, maxSample)
	}
	if len(data) == 0 {
		return nil, errors.New("training forest: no data")
	}
	dims := len(data[0])
	if dims == 0 || dims > maxDims {
		return nil, fmt.Errorf("training forest: rows must have 1-%d features", maxDims)
	}
	for i, row := range data {
		if len(row) != dims {
			return nil, fmt.Errorf("training forest: row %d has %d features, want %d", i, len(row), dims)
		}
		for _, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("training forest: row %d holds a value that is not finite", i)
			}
		}
	}
	var cum []float64
	if opts.Weights != nil {
		if len(opts.Weights) != dims {
			return nil, fmt.Errorf("training forest: %d weights for %d features", len(opts.Weights), dims)
		}
		total := 0.0
		for _, w := range opts.Weights {
			if !(w >= 0) || math.IsInf(w, 0) {
				return nil, errors.New("training forest: weights must be finite and not negative")
			}
			total += w
			cum = append(cum, total)
		}
		if total <= 0 {
			return nil, errors.New("training forest: every weight is zero")
		}
	}
	psi := min(opts.Sample, len(data))
	limit := int(math.Ceil(math.Log2(float64(max(psi, 2)))))
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	f := &Forest{dims: dims, sample: psi, trees: make([]tree, opts.Trees)}
	idx := make([]int, len(data))
	for i := range idx {
		idx[i] = i
	}
	for t := range f.trees {
		// Partial Fisher–Yates: the first psi entries are a sample without
		// replacement.
		for i := 0; i < psi; i++ {
			j := i + rng.IntN(len(idx)-i)
			idx[i], idx[j] = idx[j], idx[i]
		}
		sub := make([][]float64, psi)
		for i := range sub {
			sub[i] = data[idx[i]]
		}
		b := &builder{rng: rng, limit: limit, dims: dims, cum: cum}
		b.grow(sub, 0)
		f.trees[t] = b.t
	}
	return f, nil
}

// builder grows one tree.
type builder struct {
	rng   *rand.Rand
	limit int
	dims  int
	cum   []float64 // cumulative weights; nil means uniform
	t     tree
}

// pick chooses a split feature.
func (b *builder) pick() int {
	if b.cum == nil {
		return b.rng.IntN(b.dims)
	}
	x := b.rng.Float64() * b.cum[len(b.cum)-1]
	i, _ := slices.BinarySearch(b.cum, x)
	for i < len(b.cum)-1 && (b.cum[i] <= x || (i > 0 && b.cum[i] == b.cum[i-1])) {
		i++
	}
	return i
}

func (b *builder) node() int32 {
	b.t.feat = append(b.t.feat, -1)
	b.t.split = append(b.t.split, 0)
	b.t.lo = append(b.t.lo, 0)
	b.t.hi = append(b.t.hi, 0)
	b.t.left = append(b.t.left, 0)
	b.t.right = append(b.t.right, 0)
	b.t.size = append(b.t.size, 0)
	return int32(len(b.t.feat) - 1)
}

// grow adds the subtree of points at depth and returns its index.
func (b *builder) grow(points [][]float64, depth int) int32 {
	n := b.node()
	if depth >= b.limit || len(points) <= 1 || allSame(points) {
		b.t.size[n] = int32(len(points))
		return n
	}
	q := b.pick()
	lo, hi := points[0][q], points[0][q]
	for _, p := range points[1:] {
		lo, hi = min(lo, p[q]), max(hi, p[q])
	}
	var split float64
	var left, right [][]float64
	if lo == hi {
		// Constant here: the node only isolates what is outside [lo, hi];
		// every training point goes left.
		split = math.Nextafter(lo, math.Inf(1))
		left = points
	} else {
		split = lo + b.rng.Float64()*(hi-lo)
		if split <= lo {
			split = math.Nextafter(lo, hi)
		}
		// Partition in place.
		i, j := 0, len(points)-1
		for i <= j {
			if points[i][q] < split {
				i++
			} else {
				points[i], points[j] = points[j], points[i]
				j--
			}
		}
		left, right = points[:i], points[i:]
	}
	b.t.feat[n] = int16(q)
	b.t.split[n] = split
	b.t.lo[n], b.t.hi[n] = lo, hi
	l := b.grow(left, depth+1)
	r := b.grow(right, depth+1)
	b.t.left[n], b.t.right[n] = l, r
	return n
}

func allSame(points [][]float64) bool {
	first := points[0]
	for _, p := range points[1:] {
		for i, v := range p {
			if v != first[i] {
				return false
			}
		}
	}
	return true
}

// pathLength is h(x) in one tree: edges from the root to x's leaf, plus
// C(size) for the points the leaf still held at the height limit.
func (t *tree) pathLength(x []float64) float64 {
	n, depth := int32(0), 0
	for t.feat[n] >= 0 {
		v := x[t.feat[n]]
		if v < t.lo[n] || v > t.hi[n] || v != v {
			return float64(depth + 1)
		}
		if v < t.split[n] {
			n = t.left[n]
		} else {
			n = t.right[n]
		}
		depth++
	}
	return float64(depth) + C(int(t.size[n]))
}

// Score returns the anomaly score s(x, ψ) = 2^(−E[h(x)]/C(ψ)) in [0, 1]:
// near 1 for points isolated in few splits, about 0.5 or below for points
// like the bulk of the training data. x must have Dims values; a missing
// value counts as zero and extra values are ignored.
func (f *Forest) Score(x []float64) float64 {
	if len(x) < f.dims {
		y := make([]float64, f.dims)
		copy(y, x)
		x = y
	}
	var sum float64
	for i := range f.trees {
		sum += f.trees[i].pathLength(x)
	}
	avg := sum / float64(len(f.trees))
	c := C(f.sample)
	if c == 0 {
		return 0.5
	}
	return math.Exp2(-avg / c)
}
