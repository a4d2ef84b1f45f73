package anomaly

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// smallModel trains a model on four office accounts.
func smallModel(t testing.TB) (*Model, *Baseline) {
	t.Helper()
	b := newBaseline(t, Config{Trees: 20, Window: 14 * 24 * time.Hour})
	tr := NewTrainer(b)
	for i := range 4 {
		for _, ev := range officeEvents(string(rune('A' + i))) {
			tr.Observe(ev)
		}
	}
	m, err := tr.Fit()
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

// resum recomputes a model file's checksum.
func resum(data []byte) []byte {
	body := data[:len(data)-sha256.Size]
	sum := sha256.Sum256(body)
	return append(body, sum[:]...)
}

func TestModelRoundTrip(t *testing.T) {
	m, _ := smallModel(t)
	var buf bytes.Buffer
	if err := WriteModel(&buf, m); err != nil {
		t.Fatal(err)
	}
	m2, err := ReadModel(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if m2.Rows() != m.Rows() || !m2.Trained().Equal(m.Trained()) || m2.Forest().Trees() != 20 {
		t.Errorf("read back rows %d trained %v trees %d", m2.Rows(), m2.Trained(), m2.Forest().Trees())
	}
	for _, v := range []Vector{{}, {FeatNewDest: 2, FeatRisk: 3}, {FeatBurst: 20, FeatQuietHour: 4}} {
		if a, b := m.Score(v, nil).Score, m2.Score(v, nil).Score; a != b {
			t.Errorf("score %v before saving, %v after", a, b)
		}
	}
	// The file a daemon keeps in its data directory.
	path := filepath.Join(t.TempDir(), "anomaly.model")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadModel(f); err != nil {
		t.Fatal(err)
	}
}

func TestModelFileErrors(t *testing.T) {
	m, _ := smallModel(t)
	var buf bytes.Buffer
	if err := WriteModel(&buf, m); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, data := range map[string][]byte{
		"empty":     nil,
		"magic":     mutate(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":   mutate(func(b []byte) []byte { b[5] = 9; return b }),
		"truncated": good[:len(good)-1],
		"padded":    append(append([]byte(nil), good...), 0),
		"flipped":   mutate(func(b []byte) []byte { b[len(b)/2] ^= 1; return b }),
		"checksum":  mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
	} {
		_, err := ReadModel(bytes.NewReader(data))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !errors.Is(err, errModel) {
			t.Errorf("%s: %v does not wrap the model file error", name, err)
		}
	}
}

func TestModelRefusesOtherFeatures(t *testing.T) {
	m, _ := smallModel(t)
	var buf bytes.Buffer
	WriteModel(&buf, m)
	data := buf.Bytes()
	// Rename the first feature and fix the checksum: a model for other
	// features is refused even when intact.
	i := bytes.Index(data, []byte(featureNames[0]))
	data[i] = 'X'
	data = resum(data)
	if _, err := ReadModel(bytes.NewReader(data)); err == nil {
		t.Error("a model for other features was accepted")
	}
}
