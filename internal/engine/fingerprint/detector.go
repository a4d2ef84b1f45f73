package fingerprint

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
)

// Name is the rule of the detector's decisions and verdicts.
const Name = "scanner"

// Bounds on the weak-mark scores.
const (
	maxScoreSources = 1 << 16
	scoreMemory     = 10 * time.Minute // how long a source's weak marks add up
)

// Detector bans scanners by fingerprint: a strong mark bans and drops at
// once; distinct weak marks of event.Request add up per source (for 10
// minutes) and ban at fingerprints.threshold.
type Detector struct {
	m         *Matcher
	threshold int
	banTime   time.Duration

	mu     sync.Mutex
	scores map[[16]byte]score
}

type score struct {
	mask uint64
	at   time.Time
}

var (
	_ detector.Detector  = (*Detector)(nil)
	_ detector.OnRequest = (*Detector)(nil)
)

// NewDetector builds the detector from its config section and the list's
// YAML (the wiring reads fingerprints.file; nil means Embedded()); name
// labels the list in errors.
func NewDetector(c config.Fingerprints, name string, data []byte) (*Detector, error) {
	if c.Threshold < 1 || c.BanTime <= 0 {
		return nil, fmt.Errorf("fingerprints: threshold and bantime must be positive")
	}
	if data == nil {
		name, data = "embedded", embedded
	}
	m, err := Compile(name, data)
	if err != nil {
		return nil, err
	}
	return &Detector{m: m, threshold: c.Threshold, banTime: c.BanTime.D(), scores: map[[16]byte]score{}}, nil
}

// Matcher returns the compiled list.
func (d *Detector) Matcher() *Matcher { return d.m }

// Name implements detector.Detector.
func (d *Detector) Name() string { return Name }

// Request implements detector.OnRequest. It does not allocate unless it
// bans.
func (d *Detector) Request(sh *detector.Shared, in *detector.Input, out *detector.Out) {
	fp := d.m.Match(in.SIP)
	if fp.Strong != "" {
		// One datagram is all the evidence here, and its source can be
		// forged (DESIGN key decision 9): an unproven source loses the
		// datagram, never its address. Every datagram of a real scanner
		// carries the mark, so each is dropped all the same.
		if !in.Proven {
			out.Set(detector.Verdict{Action: detector.Drop, Rule: Name, Reason: fp.Strong})
			return
		}
		if b, ok := sh.IPBan(in.Src, in.Now, Name, "scanner fingerprint "+fp.Strong, d.banTime); ok {
			out.Ban(b)
		}
		out.Set(detector.Verdict{Action: detector.Drop, Rule: Name, Reason: fp.Strong})
		return
	}
	if fp.Weak == 0 || !in.Request {
		return
	}
	if d.addScore(in.Src, fp.Weak, in.Now) >= d.threshold {
		if b, ok := sh.IPBan(in.Src, in.Now, Name, "weak scanner marks reached fingerprints.threshold", d.banTime); ok {
			out.Ban(b)
		}
		out.Set(detector.Verdict{Action: detector.Drop, Rule: Name, Reason: "score"})
	}
}

// addScore adds weak marks to src's remembered marks and returns the total
// score of the distinct marks seen within scoreMemory.
func (d *Detector) addScore(src netip.Addr, mask uint64, now time.Time) int {
	k := src.As16()
	d.mu.Lock()
	defer d.mu.Unlock()
	sc, ok := d.scores[k]
	if ok && now.Sub(sc.at) >= scoreMemory {
		sc = score{}
	}
	if !ok && len(d.scores) >= maxScoreSources {
		for k, v := range d.scores {
			if now.Sub(v.at) >= scoreMemory {
				delete(d.scores, k)
			}
		}
		if len(d.scores) >= maxScoreSources {
			clear(d.scores)
		}
	}
	sc.mask |= mask
	sc.at = now
	d.scores[k] = sc
	return d.m.Score(sc.mask)
}

// Forget implements detector.Detector: it clears addr's weak marks.
func (d *Detector) Forget(addr netip.Addr, account string) {
	if !addr.IsValid() || account != "" {
		return
	}
	d.mu.Lock()
	delete(d.scores, addr.As16())
	d.mu.Unlock()
}
