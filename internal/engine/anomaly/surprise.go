package anomaly

import "math"

// maxSurprise caps a surprise: 1 in 10^30 is as unusual as anything gets.
const maxSurprise = 30

// poissonSurprise is −log10 P(X ≥ n) for X ~ Poisson(mean): 0 when n is
// at or below the mean, growing with how unlikely n events are for an
// account that usually has mean. Counts are noisy; a log ratio would flag
// 8 calls against a usual 3 as much as 1 against a usual 0.1.
func poissonSurprise(n int, mean float64) float64 {
	mean = max(mean, 1e-3)
	if float64(n) <= mean {
		return 0
	}
	// P(X ≥ n) = t_n · Σ_{k≥n} t_k/t_n; for n > mean the ratios shrink
	// geometrically.
	l0 := -mean + float64(n)*math.Log(mean) - lgamma(n+1)
	sum, r := 0.0, 1.0
	for k := n; k < n+400 && r > 1e-12*sum; k++ {
		sum += r
		r *= mean / float64(k+1)
	}
	log10p := l0/math.Ln10 + math.Log10(sum)
	return clampSurprise(-log10p)
}

// binomialSurprise is −log10 P(X ≥ k) for X ~ Binomial(n, p).
func binomialSurprise(k, n int, p float64) float64 {
	p = min(max(p, 1e-4), 1-1e-4)
	if k <= 0 || float64(k) <= float64(n)*p {
		return 0
	}
	var prob float64
	for i := k; i <= n; i++ {
		prob += math.Exp(lgamma(n+1) - lgamma(i+1) - lgamma(n-i+1) + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	if prob <= 0 {
		return maxSurprise
	}
	return clampSurprise(-math.Log10(prob))
}

func clampSurprise(x float64) float64 {
	switch {
	case math.IsNaN(x) || x < 0:
		return 0
	case x > maxSurprise:
		return maxSurprise
	}
	return x
}

func lgamma(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}
