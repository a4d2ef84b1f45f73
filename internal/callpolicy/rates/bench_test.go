package rates

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bigTable builds n distinct prefixes of 2 to 8 digits, like a carrier's
// full A-Z deck with mobile and operator splits.
func bigTable(b *testing.B, n int) (*Table, []string) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var sb strings.Builder
	sb.WriteString("currency: USD\nrates:\n")
	seen := map[string]bool{}
	var numbers []string
	for len(seen) < n {
		l := 2 + rng.IntN(7)
		p := fmt.Sprintf("%d%0*d", 1+rng.IntN(9), l-1, rng.IntN(pow10(l-1)))
		if seen[p] {
			continue
		}
		seen[p] = true
		fmt.Fprintf(&sb, "  - {prefix: \"+%s\", per_minute: 0.%04d}\n", p, rng.IntN(10000))
		numbers = append(numbers, "+"+p+strings.Repeat("7", 12-len(p)))
	}
	tab, err := Parse("bench.yaml", []byte(sb.String()))
	if err != nil {
		b.Fatal(err)
	}
	return tab, numbers
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// BenchmarkLookup: longest-prefix match and estimate with 50k prefixes.
// table-MB is the live heap the compiled table holds.
func BenchmarkLookup(b *testing.B) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	kept, _ := bigTable(b, 50000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(kept)
	tableMB := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)

	tab, numbers := bigTable(b, 50000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, ok := tab.Estimate(numbers[i%len(numbers)], 3*time.Minute); !ok {
			b.Fatal("miss")
		}
		i++
	}
	b.ReportMetric(tableMB, "table-MB")
}

// BenchmarkLookupMiss: a number no row covers probes every length.
func BenchmarkLookupMiss(b *testing.B) {
	tab, _ := bigTable(b, 50000)
	b.ReportAllocs()
	for b.Loop() {
		tab.Lookup("+0123456789012")
	}
}

// BenchmarkParse50k: loading a 50k-row file.
func BenchmarkParse50k(b *testing.B) {
	tab, _ := bigTable(b, 50000)
	_ = tab
	var sb strings.Builder
	sb.WriteString("currency: USD\nrates:\n")
	for i := range 50000 {
		fmt.Fprintf(&sb, "  - {prefix: \"+%d\", per_minute: 0.01}\n", 100000+i)
	}
	data := []byte(sb.String())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
