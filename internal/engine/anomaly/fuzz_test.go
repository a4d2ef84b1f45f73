package anomaly

import (
	"bytes"
	"testing"
)

// tinyModel is a valid model file small enough for a seed corpus.
func tinyModel(t testing.TB) []byte {
	t.Helper()
	var rows [][]float64
	for i := range 16 {
		var v Vector
		v[i%int(NumFeatures)] = float64(i)
		rows = append(rows, v[:])
	}
	f, err := Train(rows, ForestOptions{Trees: 2, Sample: 8, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteModel(&buf, &Model{forest: f, rows: len(rows)}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzReadModel feeds hostile bytes to the model loader: it must return a
// model or an error, never panic, and a model it returns must score.
func FuzzReadModel(f *testing.F) {
	good := tinyModel(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("TGAF"))
	f.Add(resum(append([]byte(nil), good...)))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadModel(bytes.NewReader(data))
		if err != nil {
			return
		}
		var v Vector
		v[0] = 1e9
		if s := m.Score(v, &Context{}).Score; !(s >= 0 && s <= 1) {
			t.Fatalf("score %v", s)
		}
		// Checksummed bytes that load must be intact: they resave the same.
		var buf bytes.Buffer
		if err := WriteModel(&buf, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatal("a loaded model does not save back to the same bytes")
		}
	})
}

func TestTinyModelLoads(t *testing.T) {
	if _, err := ReadModel(bytes.NewReader(tinyModel(t))); err != nil {
		t.Fatal(err)
	}
}
