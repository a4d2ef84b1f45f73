package dest

import (
	"strconv"
	"testing"
)

// BenchmarkNormalize: the cost per INVITE. Cached is the steady state of a
// PBX dialling a working set of numbers; Uncached is a fresh number every
// time (the cache's miss path, a scanner dialling random numbers).
func BenchmarkNormalize(b *testing.B) {
	b.Run("Cached", func(b *testing.B) {
		n := newCN(b)
		n.Normalize("0044 7400 123456")
		b.ReportAllocs()
		for b.Loop() {
			n.Normalize("0044 7400 123456")
		}
	})
	b.Run("Uncached", func(b *testing.B) {
		n, err := New(Options{DefaultCountry: "CN", OutsidePrefixes: []string{"9"}, CacheSize: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			n.Normalize("0044 7400 123456")
		}
	})
	b.Run("MissEvery", func(b *testing.B) {
		n := newCN(b)
		ins := make([]string, 1<<16)
		for i := range ins {
			ins[i] = "00447400" + strconv.Itoa(100000+i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			n.Normalize(ins[i&(len(ins)-1)])
			i++
		}
	})
	b.Run("Extension", func(b *testing.B) {
		n, err := New(Options{DefaultCountry: "CN", CacheSize: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			n.Normalize("sip:1001@pbx.example.com")
		}
	})
}
