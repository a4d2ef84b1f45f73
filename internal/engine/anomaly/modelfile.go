package anomaly

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"time"
)

// Model files: the magic "TGAF", a version, the payload's length, the
// payload and a SHA-256 of everything before it. All integers are big
// endian. The payload holds the training time, the number of attempts, the
// feature names (a model for other features is refused), the per-feature
// median and 99th percentile, then the forest: subsample size, tree count,
// and per tree its nodes (feature, split, range low and high, left, right,
// size).
const (
	modelMagic   = "TGAF"
	modelVersion = 1
	// MaxModelSize bounds a model file: 1,000 trees of 2ψ nodes at ψ = 256
	// take about 13 MB.
	MaxModelSize = 64 << 20
)

// WriteModel writes m in the model file format.
func WriteModel(w io.Writer, m *Model) error {
	var p []byte
	p = binary.BigEndian.AppendUint64(p, uint64(m.trained.UnixNano()))
	p = binary.BigEndian.AppendUint64(p, uint64(m.rows))
	p = binary.BigEndian.AppendUint16(p, uint16(NumFeatures))
	for _, n := range featureNames {
		p = append(p, byte(len(n)))
		p = append(p, n...)
	}
	for _, v := range [][NumFeatures]float64{m.p50, m.p99} {
		for _, x := range v {
			p = binary.BigEndian.AppendUint64(p, math.Float64bits(x))
		}
	}
	f := m.forest
	p = binary.BigEndian.AppendUint32(p, uint32(f.sample))
	p = binary.BigEndian.AppendUint32(p, uint32(len(f.trees)))
	for i := range f.trees {
		t := &f.trees[i]
		p = binary.BigEndian.AppendUint32(p, uint32(len(t.feat)))
		for j := range t.feat {
			p = binary.BigEndian.AppendUint16(p, uint16(t.feat[j]))
			p = binary.BigEndian.AppendUint64(p, math.Float64bits(t.split[j]))
			p = binary.BigEndian.AppendUint64(p, math.Float64bits(t.lo[j]))
			p = binary.BigEndian.AppendUint64(p, math.Float64bits(t.hi[j]))
			p = binary.BigEndian.AppendUint32(p, uint32(t.left[j]))
			p = binary.BigEndian.AppendUint32(p, uint32(t.right[j]))
			p = binary.BigEndian.AppendUint32(p, uint32(t.size[j]))
		}
	}
	var out []byte
	out = append(out, modelMagic...)
	out = binary.BigEndian.AppendUint16(out, modelVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(p)))
	out = append(out, p...)
	sum := sha256.Sum256(out)
	out = append(out, sum[:]...)
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("writing model: %w", err)
	}
	return nil
}

// ReadModel reads a model file. Anything but a complete, intact model of
// this version for these features is an error wrapping a clear message;
// hostile bytes never panic.
func ReadModel(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxModelSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading model: %w", err)
	}
	if len(data) > MaxModelSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errModel, MaxModelSize)
	}
	if len(data) < 10+sha256.Size || string(data[:4]) != modelMagic {
		return nil, fmt.Errorf("%w: not a tollguard anomaly model", errModel)
	}
	if v := binary.BigEndian.Uint16(data[4:]); v != modelVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads version %d", errModel, v, modelVersion)
	}
	n := binary.BigEndian.Uint32(data[6:])
	if uint64(n) != uint64(len(data)-10-sha256.Size) {
		return nil, fmt.Errorf("%w: truncated or padded (payload %d bytes, file holds %d)", errModel, n, len(data)-10-sha256.Size)
	}
	body := data[:len(data)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[len(body):]) {
		return nil, fmt.Errorf("%w: checksum mismatch (corrupted)", errModel)
	}
	d := &decoder{b: body[10:]}
	m := &Model{}
	m.trained = time.Unix(0, int64(d.u64())).UTC()
	m.rows = int(min(d.u64(), math.MaxInt32))
	if dims := int(d.u16()); dims != int(NumFeatures) {
		return nil, fmt.Errorf("%w: %d features, this build has %d", errModel, dims, NumFeatures)
	}
	for i := range NumFeatures {
		l := int(d.u8())
		if name := string(d.bytes(l)); d.err == nil && name != featureNames[i] {
			return nil, fmt.Errorf("%w: feature %d is %q, this build has %q", errModel, i, name, featureNames[i])
		}
	}
	for _, v := range []*Vector{&m.p50, &m.p99} {
		for i := range v {
			v[i] = d.f64()
		}
	}
	f := &Forest{dims: int(NumFeatures), sample: int(d.u32())}
	nt := d.u32()
	if d.err == nil && (f.sample < 2 || f.sample > maxSample || nt < 1 || nt > maxTrees) {
		return nil, fmt.Errorf("%w: sample %d or tree count %d out of range", errModel, f.sample, nt)
	}
	for ti := 0; d.err == nil && ti < int(nt); ti++ {
		nn := int(d.u32())
		if d.err == nil && (nn < 1 || nn > 2*f.sample+1 || nn*38 > len(d.b)) {
			return nil, fmt.Errorf("%w: tree %d has %d nodes", errModel, ti, nn)
		}
		t := tree{feat: make([]int16, nn), split: make([]float64, nn), lo: make([]float64, nn), hi: make([]float64, nn), left: make([]int32, nn), right: make([]int32, nn), size: make([]int32, nn)}
		for j := 0; j < nn && d.err == nil; j++ {
			t.feat[j] = int16(d.u16())
			t.split[j], t.lo[j], t.hi[j] = d.f64(), d.f64(), d.f64()
			t.left[j], t.right[j], t.size[j] = int32(d.u32()), int32(d.u32()), int32(d.u32())
			if err := t.check(j, f.dims, f.sample); err != nil {
				return nil, fmt.Errorf("%w: tree %d node %d: %v", errModel, ti, j, err)
			}
		}
		f.trees = append(f.trees, t)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", errModel, d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last tree", errModel, len(d.b))
	}
	m.forest = f
	return m, nil
}

// check validates node j: a leaf's size, an inner node's feature, finite
// split and children after it (so every path ends).
func (t *tree) check(j, dims, sample int) error {
	if t.feat[j] == -1 {
		if t.size[j] < 0 || int(t.size[j]) > sample {
			return fmt.Errorf("leaf size %d", t.size[j])
		}
		return nil
	}
	n := int32(len(t.feat))
	switch {
	case t.feat[j] < 0 || int(t.feat[j]) >= dims:
		return fmt.Errorf("feature %d", t.feat[j])
	case !finite(t.split[j]) || !finite(t.lo[j]) || !finite(t.hi[j]) || t.lo[j] > t.hi[j]:
		return fmt.Errorf("split or range is not finite and ordered")
	case t.left[j] <= int32(j) || t.left[j] >= n || t.right[j] <= int32(j) || t.right[j] >= n:
		return fmt.Errorf("children %d, %d", t.left[j], t.right[j])
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// decoder reads big-endian values, remembering the first shortfall.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n > len(d.b) {
		if d.err == nil {
			d.err = fmt.Errorf("truncated payload")
		}
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8    { return d.bytes(1)[0] }
func (d *decoder) u16() uint16  { return binary.BigEndian.Uint16(d.bytes(2)) }
func (d *decoder) u32() uint32  { return binary.BigEndian.Uint32(d.bytes(4)) }
func (d *decoder) u64() uint64  { return binary.BigEndian.Uint64(d.bytes(8)) }
func (d *decoder) f64() float64 { return math.Float64frombits(d.u64()) }
