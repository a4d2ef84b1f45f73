package anomaly

import (
	"hash/maphash"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
	"github.com/tollguard/tollguard/internal/event"
)

var destSeed = maphash.MakeSeed()

// Observe learns from an event: call attempts (see Attempt), ended calls
// (duration, cost) and registrations (source and User-Agent become known).
// Other kinds are ignored.
func (b *Baseline) Observe(ev event.Event) {
	switch e := ev.(type) {
	case *event.CallAttempt:
		b.Attempt(e)
	case *event.CallEnded:
		b.ended(e)
	case *event.Register:
		if e.Account == "" {
			return
		}
		now := e.Time.Unix()
		a := b.get(e.Account, now)
		a.last = max(a.last, now)
		b.access(a, e.Source.Addr(), e.UserAgent, now, true)
	}
}

// Attempt computes the features of a call attempt from the account's
// current window, then learns from it. The returned Context explains the
// vector.
func (b *Baseline) Attempt(e *event.CallAttempt) (Vector, Context) {
	return b.AttemptDest(e, b.norm.Normalize(e.Destination))
}

// AttemptDest is Attempt with the destination already read (call policy
// reads it too: passing its Result saves parsing the number twice).
func (b *Baseline) AttemptDest(e *event.CallAttempt, r dest.Result) (Vector, Context) {
	var v Vector
	t := e.Time
	now := t.Unix()
	b.decayPBX(now)
	if b.pbx.start == 0 {
		b.pbx.start = now
	}
	a := b.get(e.Account, now)
	b.decay(a, now)
	a.last = max(a.last, now)
	ctx := Context{Account: e.Account, Time: t, Dest: r, History: a.history}
	country, rng := destKeys(r, e.Destination)
	ctx.Country, ctx.Range = country, rng
	rh := uint32(maphash.String(destSeed, rng))
	intl := r.Classes.Has(dest.International)
	risky := r.Classes&(dest.Premium|dest.Satellite|dest.HighRisk) != 0 || r.Type == dest.TypePremiumRate
	if premium := r.Classes.Has(dest.Premium) || r.Type == dest.TypePremiumRate; premium && len(country) == 2 {
		// Premium numbers of a country count as a country of their own:
		// "GB premium" is new to an account that calls GB every day.
		country += " premium"
		ctx.Country = country
	}
	expire := now - int64(b.tau)

	// Push the attempt first: counts include it.
	at := attempt{t: now, intl: intl, price: float32(b.price(r)), key: destKey(r, e.Destination), raw: maphash.String(destSeed, e.Destination)}
	if r.E164 != "" && len(r.E164) <= 20 {
		if n, err := strconv.ParseUint(r.E164[1:], 10, 64); err == nil {
			at.num, at.ndig = n, uint8(len(r.E164)-1)
		}
	}
	a.recent[a.nRecent%ringSize] = at
	a.nRecent++

	// Rate against the hour-of-week profile.
	h := b.hourOfWeek(t)
	usual, mean := b.expected(a, h, now)
	ctx.Usual1h, ctx.Mean1h = usual, mean
	var keys [ringSize]uint64
	for i := range min(a.nRecent, ringSize) {
		x := &a.recent[i]
		if x.t > now-3600 && x.t <= now {
			ctx.Calls1h++
			if !slices.Contains(keys[:ctx.Distinct1h], x.key) {
				keys[ctx.Distinct1h] = x.key
				ctx.Distinct1h++
			}
			if x.t > now-600 {
				ctx.Calls10m++
			}
		}
	}
	// The floors keep one call at an hour the account never calls from
	// counting as a burst: that is what FeatQuietHour says.
	v[FeatBurst] = poissonSurprise(ctx.Calls10m, max(usual/6, 0.2))
	v[FeatRate] = poissonSurprise(ctx.Calls1h, max(usual, 0.5))
	const eps = 0.02
	v[FeatQuietHour] = pos(math.Log2((mean + eps) / (usual + eps)))

	// Destinations never seen.
	if intl || strings.HasSuffix(country, " premium") {
		// How few accounts of the PBX call this country (this one
		// not counted).
		n := b.pbx.callers[country]
		if _, ok := a.countries[country]; ok {
			n--
		}
		ctx.PBXCallers, ctx.PBXAccounts = n, len(b.accounts)
		v[FeatRareDest] = -math.Log10((float64(n) + 0.5) / float64(len(b.accounts)+1))
	}
	if seen, ok := a.countries[country]; !ok || seen < expire {
		// A country new to the account: more so when the account rarely
		// calls abroad at all.
		ctx.NewCountry = true
		v[FeatNewDest] = 1.5
		if intl {
			v[FeatNewDest] -= math.Log10(smooth(a.intl)) / 2
		}
	} else if seen, ok := a.rangeSeen(rh); !ok || seen < expire {
		ctx.NewRange = true
		v[FeatNewDest] = 0.5
	}
	b.rememberCountry(a, country, now)
	a.rememberRange(rh, now)

	// Usual shares: the account's own, or the PBX's while it has none.
	ui, ur, us, ud, usp := a.intl, a.risk, a.short, a.distinct, a.spend
	if !a.primed {
		ui, ur, us, ud, usp = b.pbx.intl, b.pbx.risk, b.pbx.short, b.pbx.distinct, b.pbx.spend
	}
	ctx.UsualIntl, ctx.UsualRisk, ctx.UsualShort, ctx.UsualDistinct, ctx.UsualSpend = ui, ur, us, ud, usp
	if risky {
		v[FeatRisk] = 1 - math.Log10(smooth(ur))
	}
	for i := 0; i < min(a.nRecent, 10); i++ {
		x := &a.recent[(a.nRecent-1-i)%ringSize]
		ctx.Recent++
		if x.intl {
			ctx.IntlRecent++
		}
	}
	v[FeatIntlShare] = binomialSurprise(ctx.IntlRecent, ctx.Recent, smooth(ui))
	v[FeatDistinct] = poissonSurprise(ctx.Distinct1h, max(ud, 1))

	// Sequential run ending with this attempt.
	for i := 0; i < min(a.nRecent, ringSize)-1; i++ {
		x := &a.recent[(a.nRecent-1-i)%ringSize]
		y := &a.recent[(a.nRecent-2-i)%ringSize]
		if x.num == 0 || y.num == 0 || x.ndig != y.ndig || x.t-y.t > 3600 {
			break
		}
		d := int64(x.num - y.num)
		if d < -3 || d > 3 || d == 0 {
			break
		}
		ctx.Sequential++
	}
	if ctx.Sequential >= 2 {
		// Two numbers a step apart happen by chance in a dense range;
		// three in a row rarely do.
		v[FeatSequential] = float64(ctx.Sequential)
	}

	// Short calls and spend from recent ended calls.
	var nShort, nEnded int
	for i := range min(a.nEnded, endedSize) {
		x := &a.ended[i]
		if x.t > now-24*3600 {
			nEnded++
			if x.short {
				nShort++
			}
		}
		if x.t > now-3600 {
			ctx.Spend1h += float64(x.cost)
		}
	}
	if nEnded > 0 {
		ctx.ShortShare = float64(nShort) / float64(nEnded)
	}
	if nEnded >= 3 {
		v[FeatShortCalls] = binomialSurprise(nShort, nEnded, smooth(us))
	}
	v[FeatSpend] = pos(math.Log2((ctx.Spend1h + 0.1) / (usp + 0.1)))

	// Source network and User-Agent.
	if b.access(a, e.Source.Addr(), e.UserAgent, now, false) {
		ctx.NewSource = netOf(e.Source.Addr())
		v[FeatNewAccess]++
	}
	if ua := capAgent(e.UserAgent); ua != "" {
		if seen, ok := a.agents[ua]; a.nRecent > 1 && (!ok || seen < expire) {
			ctx.NewAgent = ua
			v[FeatNewAccess]++
		}
		remember(a.agents, ua, now, maxAgents)
	}

	// Learn.
	hr := now / 3600
	if hr != a.hour {
		a.hour, a.hourQuota, a.hourLearnt = hr, float32(max(3, 2*usual)), 0
	}
	if a.hourQuota >= 1 {
		a.hourQuota--
		a.hourLearnt++
		a.profile[h]++
	}
	a.history++
	if hr != b.pbx.hour {
		b.pbx.hour, b.pbx.hourLearnt = hr, 0
	}
	b.pbx.hourLearnt++
	b.pbx.profile[h]++
	b.pbx.total++
	ema := func(old *float64, x float64, primed bool) {
		if !primed {
			*old = x
			return
		}
		*old += emaAlpha * (x - *old)
	}
	ema(&a.intl, b2f(intl), a.primed)
	ema(&a.risk, b2f(risky), a.primed)
	ema(&a.distinct, float64(ctx.Distinct1h), a.primed)
	ema(&a.spend, ctx.Spend1h, a.primed)
	if !a.primed {
		a.short = b.pbx.short
	}
	a.primed = true
	ema(&b.pbx.intl, b2f(intl), b.pbx.primed)
	ema(&b.pbx.risk, b2f(risky), b.pbx.primed)
	ema(&b.pbx.distinct, float64(ctx.Distinct1h), b.pbx.primed)
	ema(&b.pbx.spend, ctx.Spend1h, b.pbx.primed)
	b.pbx.primed = true
	return v, ctx
}

// ended records a call's end: whether it was short or unanswered, and its
// cost.
func (b *Baseline) ended(e *event.CallEnded) {
	if e.Account == "" {
		return
	}
	now := e.Time.Unix()
	a := b.accounts[key(e.Account)]
	if a == nil {
		return // no attempt seen: nothing to learn against
	}
	// The price is the attempt's, found by what was dialled; the number
	// is read again only when the attempt has left the ring.
	price, found := float32(0), false
	raw := maphash.String(destSeed, e.Destination)
	for i := range min(a.nRecent, ringSize) {
		if x := &a.recent[(a.nRecent-1-i)%ringSize]; x.raw == raw {
			price, found = x.price, true
			break
		}
	}
	if !found {
		price = float32(b.price(b.norm.Normalize(e.Destination)))
	}
	short := e.Billsec < shortCall
	cost := price * float32(e.Billsec.Minutes())
	a.ended[a.nEnded%endedSize] = ended{t: now, short: short, cost: cost}
	a.nEnded++
	a.short += emaAlpha * (b2f(short) - a.short)
	b.pbx.short += emaAlpha * (b2f(short) - b.pbx.short)
}

// access remembers the source network and, for registrations, the
// User-Agent. It reports whether the network was new for an account that
// already had one.
func (b *Baseline) access(a *account, addr netip.Addr, ua string, now int64, register bool) bool {
	if !addr.IsValid() {
		return false
	}
	p := netOf(addr)
	seen, ok := a.sources[p]
	isNew := len(a.sources) > 0 && (!ok || seen < now-int64(b.tau))
	remember(a.sources, p, now, maxSources)
	if register {
		if ua = capAgent(ua); ua != "" {
			remember(a.agents, ua, now, maxAgents)
		}
	}
	return isNew
}

// netOf is the network a source is remembered by: /24 for IPv4, /56 for
// IPv6 (one site).
func netOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 56
	}
	p, _ := a.Prefix(bits)
	return p
}

func capAgent(ua string) string {
	if len(ua) > maxAgentLen {
		return ua[:maxAgentLen]
	}
	return ua
}

// remember sets m[k] = now, dropping the entry seen longest ago when m is
// full.
func remember[K comparable](m map[K]int64, k K, now int64, limit int) {
	if _, ok := m[k]; !ok && len(m) >= limit {
		var oldK K
		old := int64(math.MaxInt64)
		for k2, t := range m {
			if t < old {
				oldK, old = k2, t
			}
		}
		delete(m, oldK)
	}
	m[k] = now
}

// callingCodeKeys are the country keys of destinations with no region
// ("+882"), built once: read-only after start.
var callingCodeKeys = func() (t [1000]string) {
	for i := 1; i < len(t); i++ {
		t[i] = "+" + strconv.Itoa(i)
	}
	return t
}()

// destKeys returns the country key ("LV", "+882") and the number range
// (E.164 less its last 4 digits) of a destination.
func destKeys(r dest.Result, raw string) (country, rng string) {
	switch {
	case r.Kind != dest.KindNumber:
		return "internal", "internal"
	case r.Country != "":
		country = r.Country
	case r.CallingCode > 0 && r.CallingCode < len(callingCodeKeys):
		country = callingCodeKeys[r.CallingCode] // no allocation per call attempt
	default:
		country = "+" + strconv.Itoa(r.CallingCode)
	}
	rng = r.E164
	if len(rng) > 8 {
		rng = rng[:len(rng)-4]
	}
	return country, rng
}

// smooth turns a usual share learnt over about 1/emaAlpha calls into a
// probability that is never 0 or 1: one unusual call in 50 is not a
// certainty of never.
func smooth(p float64) float64 {
	n := 1 / emaAlpha
	return (p*n + 0.5) / (n + 1)
}

func pos(x float64) float64 {
	if x > 0 && !math.IsInf(x, 0) {
		return x
	}
	return 0
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// destKey identifies a destination for distinct counts: its E.164 form, or
// what was dialled when it is not a number.
func destKey(r dest.Result, raw string) uint64 {
	if r.E164 != "" {
		return maphash.String(destSeed, r.E164)
	}
	return maphash.String(destSeed, raw)
}
