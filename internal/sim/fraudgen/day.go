package fraudgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// day appends one account's events of one day. td is the day's index in
// the test period (negative in training).
func (g *gen) day(out []rec, a *acct, day time.Time, testing bool, td int) []rec {
	src, ua := a.src, a.ua
	if testing && a.noise == "network" && td >= a.nday {
		src = netip.AddrFrom4([4]byte{192, 0, 2, src.As4()[3]})
	}
	hijacked := testing && a.fraud == "hijack" && td >= a.fday && td <= a.fday+2
	if hijacked {
		src = netip.AddrFrom4([4]byte{185, 220, 101, byte(g.rng.IntN(250))})
		ua = attacker[g.rng.IntN(len(attacker))]
	}
	// Phones register when the working day starts.
	for h := range 24 {
		if working(a.prof, day.Weekday(), h) {
			t := day.Add(time.Duration(h)*time.Hour + time.Duration(g.rng.IntN(600))*time.Second)
			out = append(out, rec{t: t, ev: &event.Register{Meta: meta(t, src), SIP: event.SIP{Method: "REGISTER", UserAgent: ua}, Account: a.name, Expires: 3600}, fraud: hijacked, pattern: pat(hijacked, a)})
			break
		}
	}
	for h := range 24 {
		if !working(a.prof, day.Weekday(), h) {
			// Now and then a call outside working hours.
			if g.rng.Float64() < 0.004 {
				to := g.normalDest(a)
				if hijacked {
					to = g.number([]string{"+3706", "+3712", "+2526", "+5352"}[g.rng.IntN(4)])
				}
				out = g.call(out, a, day.Add(time.Duration(h)*time.Hour+time.Duration(g.rng.IntN(3600))*time.Second), to, src, ua, hijacked, pat(hijacked, a))
			}
			continue
		}
		for range g.poisson(a.rate) {
			t := day.Add(time.Duration(h)*time.Hour + time.Duration(g.rng.IntN(3600))*time.Second)
			to := g.normalDest(a)
			if hijacked {
				to = g.number([]string{"+3706", "+3712", "+2526", "+5352"}[g.rng.IntN(4)])
			}
			out = g.call(out, a, t, to, src, ua, hijacked, pat(hijacked, a))
		}
	}
	if !testing {
		// The warm-up: one premium call a week, unlabelled, through the
		// last three weeks of training.
		if a.fraud == "warmup" && day.Weekday() == time.Wednesday && day.After(g.opts.Start.AddDate(0, 0, g.opts.TrainDays-22)) {
			out = g.call(out, a, g.workHour(a, day), g.number("+44909"), a.src, a.ua, false, "")
		}
		return out
	}
	if a.noise == "country" && td == a.nday {
		t := g.workHour(a, day)
		out = g.call(out, a, t, g.number(foreign[g.rng.IntN(len(foreign))]), src, ua, false, "")
	}
	if td == a.fday {
		out = g.fraud(out, a, day)
	}
	return out
}

func pat(fraud bool, a *acct) string {
	if fraud {
		return a.fraud
	}
	return ""
}

// normalDest picks a destination the account usually calls.
func (g *gen) normalDest(a *acct) string {
	switch {
	case a.intl > 0 && g.rng.Float64() < a.intl:
		return g.number(a.foreign[g.rng.IntN(len(a.foreign))])
	case a.prof == campaign || g.rng.Float64() < 0.25:
		// Campaigns dial lists; offices now and then a new number.
		return g.number(a.areas[g.rng.IntN(len(a.areas))])
	}
	return a.book[g.rng.IntN(len(a.book))]
}

// fraud appends the account's fraud pattern starting on day.
func (g *gen) fraud(out []rec, a *acct, day time.Time) []rec {
	p := a.fraud
	at := func(h int) time.Time {
		return day.Add(time.Duration(h)*time.Hour + time.Duration(g.rng.IntN(3600))*time.Second)
	}
	evil := netip.AddrFrom4([4]byte{185, 220, 100, byte(g.rng.IntN(250))})
	switch p {
	case "night_burst":
		t := at(1 + g.rng.IntN(3))
		ua := attacker[g.rng.IntN(len(attacker))]
		for range 30 + g.rng.IntN(50) {
			to := g.number([]string{"+3712", "+2526", "+5352", "+88216", "+2347"}[g.rng.IntN(5)])
			out = g.call(out, a, t, to, evil, ua, true, p)
			t = t.Add(time.Duration(10+g.rng.IntN(50)) * time.Second)
		}
	case "premium_drip":
		// A premium call every few hours of the working day, from the
		// account's own phone: under every rate limit.
		day0 := day
		for n := 0; n < 8; n++ {
			t := g.workHour(a, day0)
			out = g.call(out, a, t, g.number([]string{"+44909", "+44907", "+979"}[g.rng.IntN(3)]), a.src, a.ua, true, p)
			if n%2 == 1 {
				day0 = day0.AddDate(0, 0, 1)
			}
		}
	case "new_country":
		for n := range 4 {
			t := g.workHour(a, day.AddDate(0, 0, n/2))
			out = g.call(out, a, t, g.number([]string{"+8801", "+2637", "+9477"}[n%3]), a.src, a.ua, true, p)
		}
	case "sequential":
		t := at(2 + g.rng.IntN(3))
		base := 79460000 + g.rng.IntN(900)*10
		for n := range 40 + g.rng.IntN(30) {
			to := fmt.Sprintf("+4420%08d", base+n)
			out = g.call(out, a, t, to, evil, "sipcli/v1.8", true, p)
			t = t.Add(time.Duration(45+g.rng.IntN(60)) * time.Second)
		}
	case "mimic":
		// Ordinary numbers in the account's own foreign countries, at its
		// hours, a few more a day, long calls.
		for n := range 9 {
			t := g.workHour(a, day.AddDate(0, 0, n/3))
			out = g.call(out, a, t, g.number(a.foreign[g.rng.IntN(len(a.foreign))]), a.src, a.ua, true, p)
		}
	case "warmup":
		for n := 0; n < 8; n++ {
			out = g.call(out, a, g.workHour(a, day.AddDate(0, 0, n/2)), g.number("+44909"), a.src, a.ua, true, p)
		}
	case "spread":
		for n := range 2 {
			out = g.call(out, a, g.workHour(a, day.AddDate(0, 0, n)), g.number("+6777"), a.src, a.ua, true, p)
		}
	case "wangiri_callback":
		for n := range 3 {
			t := g.workHour(a, day.AddDate(0, 0, n))
			out = g.call(out, a, t, g.number([]string{"+88216", "+1649", "+1284"}[n%3]), a.src, a.ua, true, p)
		}
	}
	return out
}

// workHour is a random time in one of the account's working hours of day.
func (g *gen) workHour(a *acct, day time.Time) time.Time {
	for range 200 {
		h := g.rng.IntN(24)
		if working(a.prof, day.Weekday(), h) || (a.prof == office && h >= 9 && h < 18) {
			return day.Add(time.Duration(h)*time.Hour + time.Duration(g.rng.IntN(3600))*time.Second)
		}
	}
	return day.Add(10 * time.Hour)
}

// call appends attempt, answer (most calls) and end.
func (g *gen) call(out []rec, a *acct, t time.Time, to string, src netip.Addr, ua string, fraud bool, pattern string) []rec {
	g.callID++
	id := fmt.Sprintf("c%d", g.callID)
	sip := event.SIP{Method: "INVITE", CallID: id, FromUser: a.name, ToUser: to, RURIUser: to, UserAgent: ua, AuthUser: a.name, HasCredentials: true}
	m := meta(t, src)
	out = append(out, rec{t: t, ev: &event.CallAttempt{Meta: m, SIP: sip, Account: a.name, Destination: to}, fraud: fraud, pattern: pattern})
	ring := time.Duration(3+g.rng.IntN(15)) * time.Second
	answered := g.rng.Float64() < 0.75
	var bill time.Duration
	switch {
	case !answered:
	case fraud && pattern == "sequential":
		answered = g.rng.Float64() < 0.2
		bill = time.Duration(1+g.rng.IntN(8)) * time.Second
	case fraud:
		answered = true
		bill = time.Duration(60+g.rng.IntN(900)) * time.Second
	default:
		bill = time.Duration(math.Exp(4.5+g.rng.NormFloat64()) * float64(time.Second))
		bill = min(max(bill, time.Second), 2*time.Hour)
	}
	if answered {
		ta := t.Add(ring)
		out = append(out, rec{t: ta, ev: &event.CallAnswered{Meta: meta(ta, src), SIP: sip, Account: a.name, Destination: to}, fraud: fraud, pattern: pattern})
	} else {
		bill = 0
	}
	te := t.Add(ring + bill)
	cause := "bye"
	if !answered {
		cause = "cancel"
	}
	out = append(out, rec{t: te, ev: &event.CallEnded{Meta: meta(te, src), SIP: sip, Account: a.name, Destination: to,
		Duration: ring + bill, Billsec: bill, Cause: cause}, fraud: fraud, pattern: pattern})
	return out
}

func meta(t time.Time, src netip.Addr) event.Meta {
	return event.Meta{Time: t, Source: netip.AddrPortFrom(src, 5060), Transport: "udp"}
}

// write writes one line in the replay format, with the label.
func (g *gen) write(w io.Writer, r *rec) error {
	label := ""
	if r.fraud {
		label = "fraud"
		g.sum.FraudEvents++
	}
	b, err := marshalFlat(r.ev.Kind().String(), r.ev, label, r.pattern)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// marshalFlat writes {"kind":…, <event fields>, "label":…, "pattern":…}.
func marshalFlat(kind string, ev event.Event, label, pattern string) ([]byte, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("fraudgen: %w", err)
	}
	b := make([]byte, 0, len(body)+80)
	b = append(b, `{"kind":"`...)
	b = append(b, kind...)
	b = append(b, '"')
	if len(body) > 2 {
		b = append(b, ',')
		b = append(b, body[1:len(body)-1]...)
	}
	if label != "" {
		b = append(b, `,"label":"`...)
		b = append(b, label...)
		b = append(b, `","pattern":"`...)
		b = append(b, pattern...)
		b = append(b, '"')
	}
	return append(b, '}', '\n'), nil
}
