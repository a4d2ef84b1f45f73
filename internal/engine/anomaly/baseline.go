package anomaly

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
)

// Bounds of one account's state, so memory stays bounded whatever the
// traffic: about 4 KB per account with full sets.
const (
	ringSize        = 32  // recent attempts kept
	endedSize       = 10  // recent ended calls kept
	maxCountries    = 32  // countries remembered per account
	maxRanges       = 128 // number ranges remembered per account
	maxSources      = 8   // source networks remembered per account
	maxAgents       = 4   // User-Agents remembered per account
	maxPBXCountries = 1024
	maxKeyLen       = 128 // longer account names are shortened with a hash
	maxAgentLen     = 96
	emaAlpha        = 0.02 // weight of one call in the usual shares (about 50 calls)
	shortCall       = 10 * time.Second
)

// Prices per minute used for spend when Options.Price is nil: rough
// magnitudes, enough to rank spend against the account's own usual.
func defaultPrice(r dest.Result) float64 {
	switch {
	case r.Classes&(dest.Premium|dest.Satellite|dest.HighRisk) != 0 || r.Type == dest.TypePremiumRate:
		return 1.0
	case r.Classes.Has(dest.International):
		return 0.15
	case r.Type == dest.TypeMobile:
		return 0.03
	}
	return 0.01
}

// Options configure a Baseline.
type Options struct {
	// Config is the anomaly section; zero values take the defaults.
	Config Config
	// Normalizer reads destinations; nil builds one for Config.Country.
	Normalizer *dest.Normalizer
	// Price is the cost per minute of a destination, for spend; nil uses
	// rough class-based prices.
	Price func(dest.Result) float64
}

// Baseline is what the detector knows of normal: per account and for the
// whole PBX, learned incrementally from events over a rolling window (counts
// decay with the window as time constant; remembered countries, ranges,
// sources and User-Agents expire after the window). It is not safe for
// concurrent use: the engine serialises calls.
type Baseline struct {
	cfg      Config
	loc      *time.Location
	norm     *dest.Normalizer
	price    func(dest.Result) float64
	tau      float64 // window in seconds
	accounts map[string]*account
	pbx      pbxProfile
}

// NewBaseline returns an empty Baseline.
func NewBaseline(opts Options) (*Baseline, error) {
	cfg := opts.Config.WithDefaults()
	if cfg.Warn == 0 {
		cfg.Warn, cfg.Block = DefaultWarn, DefaultBlock
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("anomaly: %w", err)
	}
	n := opts.Normalizer
	if n == nil {
		country := cfg.Country
		if country == "" {
			country = "US"
		}
		// A larger cache than the default: one PBX dials tens of
		// thousands of distinct numbers a week, and a number read from
		// the cache costs nanoseconds instead of tens of microseconds.
		if n, err = dest.New(dest.Options{DefaultCountry: country, CacheSize: 1 << 16}); err != nil {
			return nil, fmt.Errorf("anomaly: destinations: %w", err)
		}
	}
	price := opts.Price
	if price == nil {
		price = defaultPrice
	}
	return &Baseline{cfg: cfg, loc: loc, norm: n, price: price, tau: cfg.Window.Seconds(),
		accounts: make(map[string]*account), pbx: pbxProfile{callers: make(map[string]int)}}, nil
}

// Accounts reports how many accounts have a baseline.
func (b *Baseline) Accounts() int { return len(b.accounts) }

// account is one account's state.
type account struct {
	first, last int64 // unix seconds
	decayedAt   int64
	history     float64 // decayed attempts
	profile     [168]float32
	recent      [ringSize]attempt
	nRecent     int // total attempts ever pushed (ring index = n % ringSize)
	ended       [endedSize]ended
	nEnded      int
	countries   map[string]int64 // → last seen
	ranges      []seenRange      // at most maxRanges, unordered
	sources     map[netip.Prefix]int64
	agents      map[string]int64
	intl, risk  float64 // usual shares (EMA)
	short       float64
	distinct    float64
	spend       float64
	primed      bool // the EMAs hold at least one value
	// The clock hour being learnt and how many of its calls the profile
	// may still take: a burst teaches the profile at most twice the usual
	// (at least 3), so 60 calls at 03:00 do not make 03:00 look busy for
	// the next four weeks.
	hour      int64
	hourQuota float32
	// hourLearnt is what the profile took in the current clock hour;
	// expected leaves it out, so a call is judged against past weeks and
	// not against the burst it belongs to.
	hourLearnt float32
}

type attempt struct {
	t     int64
	num   uint64 // the E.164 digits, for sequences; 0 if none
	ndig  uint8
	intl  bool
	price float32
	key   uint64 // hash of the destination, for distinct counts
	raw   uint64 // hash of what was dialled, to find the attempt when the call ends
}

type ended struct {
	t     int64
	short bool
	cost  float32
}

// pbxProfile is the whole PBX's baseline: what a new account starts from.
type pbxProfile struct {
	hour       int64
	hourLearnt float64
	start      int64
	decayedAt  int64
	profile    [168]float64
	total      float64
	callers    map[string]int // country → accounts that call it (in their sets)
	intl       float64
	risk       float64
	short      float64
	distinct   float64
	spend      float64
	primed     bool
}

// key bounds an account name: hostile names longer than maxKeyLen keep a
// prefix and a hash of the whole.
func key(name string) string {
	if len(name) <= maxKeyLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:maxKeyLen-33] + "#" + hex.EncodeToString(sum[:16])
}

// get returns the account's state, creating it (and evicting an old one
// when full).
func (b *Baseline) get(name string, now int64) *account {
	k := key(name)
	if a := b.accounts[k]; a != nil {
		return a
	}
	if len(b.accounts) >= b.cfg.MaxAccounts {
		b.evict()
	}
	a := &account{first: now, last: now, decayedAt: now,
		countries: make(map[string]int64),
		sources:   make(map[netip.Prefix]int64), agents: make(map[string]int64)}
	b.accounts[k] = a
	return a
}

// evict drops the least recently seen of a few accounts (map order is
// random, so this approximates LRU in constant time).
func (b *Baseline) evict() {
	var oldK string
	var old *account
	n := 0
	for k, a := range b.accounts {
		if old == nil || a.last < old.last {
			oldK, old = k, a
		}
		if n++; n == 16 {
			break
		}
	}
	for c := range old.countries {
		b.uncall(c)
	}
	delete(b.accounts, oldK)
}

// hourOfWeek is 0 for Monday 00:00–00:59 in the baseline's zone.
func (b *Baseline) hourOfWeek(t time.Time) int {
	t = t.In(b.loc)
	return ((int(t.Weekday())+6)%7)*24 + t.Hour()
}

// decay ages an account's counts to now.
func (b *Baseline) decay(a *account, now int64) {
	if now-a.decayedAt < 3600 {
		return
	}
	f := float32(math.Exp(-float64(now-a.decayedAt) / b.tau))
	for i := range a.profile {
		a.profile[i] *= f
	}
	a.history *= float64(f)
	a.decayedAt = now
}

func (b *Baseline) decayPBX(now int64) {
	p := &b.pbx
	if p.decayedAt == 0 {
		p.decayedAt = now
	}
	if now-p.decayedAt < 3600 {
		return
	}
	f := math.Exp(-float64(now-p.decayedAt) / b.tau)
	for i := range p.profile {
		p.profile[i] *= f
	}
	p.total *= f
	p.decayedAt = now
}

// weeks is how many weeks of history a profile that started at first holds,
// discounted by the decay.
func (b *Baseline) weeks(first, now int64) float64 {
	age := float64(now - first)
	return b.tau * (1 - math.Exp(-age/b.tau)) / (7 * 24 * 3600)
}

// expected is the account's usual calls per hour at hour-of-week h and its
// mean over the week, blended with the PBX's per-account profile while the
// account's own history is short.
func (b *Baseline) expected(a *account, h int, now int64) (usual, mean float64) {
	nacc := float64(max(len(b.accounts), 1))
	pw := b.weeks(b.pbx.firstSeen(now), now)
	pbxAt := func(i int) float64 {
		if pw <= 0 {
			return 0
		}
		return b.pbx.profile[(i+168)%168] / pw / nacc
	}
	var own, ownMean, pbx, pbxMean float64
	for i := range 168 {
		ownMean += float64(a.profile[i])
		pbxMean += pbxAt(i)
	}
	hourNow := now / 3600
	ownAt := float64(a.profile[h])
	if a.hour == hourNow {
		ownAt = max(0, ownAt-float64(a.hourLearnt))
		ownMean -= float64(a.hourLearnt)
	}
	pbxH := pbxAt(h)
	if b.pbx.hour == hourNow && pw > 0 {
		pbxH = max(0, pbxH-b.pbx.hourLearnt/pw/nacc)
	}
	own = 0.5*ownAt + 0.25*float64(a.profile[(h+1)%168]) + 0.25*float64(a.profile[(h+167)%168])
	pbx = 0.5*pbxH + 0.25*pbxAt(h+1) + 0.25*pbxAt(h+167)
	w := b.weeks(a.first, now)
	const prior = 0.5 // weeks of PBX profile a new account starts with
	usual = (own + prior*pbx) / (w + prior)
	mean = (ownMean + prior*pbxMean) / (w + prior) / 168
	return usual, mean
}

func (p *pbxProfile) firstSeen(now int64) int64 {
	if p.start == 0 {
		return now
	}
	return p.start
}

// rememberCountry adds country to the account's set and keeps the PBX's
// count of accounts calling each country.
func (b *Baseline) rememberCountry(a *account, country string, now int64) {
	if _, ok := a.countries[country]; !ok {
		if len(a.countries) >= maxCountries {
			oldK, old := "", int64(math.MaxInt64)
			for k, t := range a.countries {
				if t < old {
					oldK, old = k, t
				}
			}
			delete(a.countries, oldK)
			b.uncall(oldK)
		}
		if _, ok := b.pbx.callers[country]; ok || len(b.pbx.callers) < maxPBXCountries {
			b.pbx.callers[country]++
		}
	}
	a.countries[country] = now
}

func (b *Baseline) uncall(country string) {
	if n, ok := b.pbx.callers[country]; ok {
		if n <= 1 {
			delete(b.pbx.callers, country)
		} else {
			b.pbx.callers[country] = n - 1
		}
	}
}

// seenRange is a number range an account called: a 32-bit hash of the
// range and when (unix seconds, unsigned: good until 2106). Eight bytes a
// range instead of a map entry's string and bucket keep 100,000 accounts
// small.
type seenRange struct {
	h, t uint32
}

// rangeSeen reports when the account last called range h.
func (a *account) rangeSeen(h uint32) (int64, bool) {
	for _, r := range a.ranges {
		if r.h == h {
			return int64(r.t), true
		}
	}
	return 0, false
}

// rememberRange records a call to range h, replacing the range seen
// longest ago when full.
func (a *account) rememberRange(h uint32, now int64) {
	oldest := -1
	for i := range a.ranges {
		if a.ranges[i].h == h {
			a.ranges[i].t = uint32(now)
			return
		}
		if oldest < 0 || a.ranges[i].t < a.ranges[oldest].t {
			oldest = i
		}
	}
	if len(a.ranges) < maxRanges {
		a.ranges = append(a.ranges, seenRange{h, uint32(now)})
		return
	}
	a.ranges[oldest] = seenRange{h, uint32(now)}
}
