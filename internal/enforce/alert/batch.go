package alert

import (
	"cmp"
	"slices"
	"time"
)

// maxExamples is how many alerts a summary names; the rest are counted.
const maxExamples = 5

// maxRecent bounds the deduplication memory of one channel.
const maxRecent = 1 << 16

// Message is what one channel delivery carries: one alert, or a summary of
// Count alerts of one kind of which Alerts are the first few.
type Message struct {
	Kind     Kind
	Severity Severity
	// Count is the number of alerts summarised (1 for a single alert).
	Count int
	// Alerts are the first alerts (at most maxExamples).
	Alerts []Alert
	// Rules counts the alerts by rule (bans).
	Rules map[string]int
	// Since and Until bound the alerts' times.
	Since, Until time.Time
}

// group collects the alerts of one kind between two messages.
type group struct {
	lastSent time.Time
	pending  Message
}

// batcher applies one channel's deduplication, grouping and rate limit. It
// is not safe for concurrent use: the channel's loop owns it.
type batcher struct {
	dedupe, interval time.Duration
	recent           map[string]time.Time
	groups           map[Kind]*group
	// Token bucket: tokens refill at rate per second up to burst.
	tokens, burst, rate float64
	last                time.Time
	// suppressed counts alerts deduplicated or held for a summary.
	suppressed int
}

// newBatcher allows perMinute messages a minute.
func newBatcher(dedupe, interval time.Duration, perMinute int) *batcher {
	return &batcher{
		dedupe: dedupe, interval: interval,
		recent: map[string]time.Time{}, groups: map[Kind]*group{},
		tokens: float64(perMinute), burst: float64(perMinute), rate: float64(perMinute) / 60,
	}
}

// take spends a token, if one is left at now.
func (b *batcher) take(now time.Time) bool {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// seen reports whether an identical alert came within the dedupe window,
// and remembers this one.
func (b *batcher) seen(a *Alert, now time.Time) bool {
	k := a.key()
	if t, ok := b.recent[k]; ok && now.Sub(t) < b.dedupe {
		return true
	}
	if len(b.recent) >= maxRecent {
		for k, t := range b.recent {
			if now.Sub(t) >= b.dedupe {
				delete(b.recent, k)
			}
		}
		if len(b.recent) >= maxRecent {
			clear(b.recent)
		}
	}
	b.recent[k] = now
	return false
}

// add takes one alert at now and returns the message to send at once, if
// any: the first alert of a kind after a quiet interval goes out alone;
// the rest are held for the summary (due).
func (b *batcher) add(a Alert, now time.Time) *Message {
	if a.Time.IsZero() {
		a.Time = now
	}
	if b.seen(&a, now) {
		b.suppressed++
		return nil
	}
	g := b.groups[a.Kind]
	if g == nil {
		g = &group{}
		b.groups[a.Kind] = g
	}
	if g.pending.Count == 0 && (g.lastSent.IsZero() || now.Sub(g.lastSent) >= b.interval) && b.take(now) {
		g.lastSent = now
		m := &Message{Kind: a.Kind, Severity: a.severity(), Count: 1, Alerts: []Alert{a}, Since: a.Time, Until: a.Time}
		if a.Rule != "" {
			m.Rules = map[string]int{a.Rule: 1}
		}
		return m
	}
	p := &g.pending
	if p.Count == 0 {
		p.Kind, p.Since, p.Rules = a.Kind, a.Time, map[string]int{}
	}
	p.Count++
	p.Severity = max(p.Severity, a.severity())
	if len(p.Alerts) < maxExamples {
		p.Alerts = append(p.Alerts, a)
	}
	if a.Rule != "" && len(p.Rules) < 64 {
		p.Rules[a.Rule]++
	}
	p.Until = a.Time
	b.suppressed++
	return nil
}

// due returns the summaries whose interval has ended at now, most severe
// first, as far as the rate limit allows; the others wait for a later call.
func (b *batcher) due(now time.Time) []*Message {
	kinds := make([]Kind, 0, len(b.groups))
	for k, g := range b.groups {
		if g.pending.Count > 0 && (g.lastSent.IsZero() || now.Sub(g.lastSent) >= b.interval) {
			kinds = append(kinds, k)
		}
	}
	slices.SortFunc(kinds, func(x, y Kind) int {
		if d := b.groups[y].pending.Severity - b.groups[x].pending.Severity; d != 0 {
			return int(d)
		}
		return cmp.Compare(x, y)
	})
	var out []*Message
	for _, k := range kinds {
		if !b.take(now) {
			break
		}
		g := b.groups[k]
		m := g.pending
		out = append(out, &m)
		g.pending = Message{}
		g.lastSent = now
	}
	return out
}
