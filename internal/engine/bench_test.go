package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/sim/fraudgen"
)

// BenchmarkCheck measures Check per event kind on the common path (nothing
// banned, no rule trips).
func BenchmarkCheck(b *testing.B) {
	src := netip.MustParseAddrPort("198.51.100.7:5060")
	sip := event.SIP{Method: "INVITE", FromUser: "1001", ToUser: "0044201234567", RURIUser: "0044201234567",
		AuthUser: "1001", HasCredentials: true, UserAgent: "Yealink SIP-T46S 66.86.0.15"}
	meta := event.Meta{Time: t0, Source: src}
	cases := []struct {
		name string
		ev   func(i int) event.Event
	}{
		{"request", func(int) event.Event { return &event.Request{Meta: meta, SIP: sip} }},
		{"call_attempt", func(int) event.Event {
			return &event.CallAttempt{Meta: meta, SIP: sip, Account: "1001", Destination: "0044201234567"}
		}},
		// a registered phone's keep-alive: no credentials, so the sweep
		// and probe checks look at it
		{"request_no_credentials", func(int) event.Event {
			return &event.Request{Meta: meta, SIP: event.SIP{Method: "OPTIONS", FromUser: "1001", ToUser: "1001", RURIUser: "1001", UserAgent: sip.UserAgent}}
		}},
		{"response", func(int) event.Event { return &event.Response{Meta: meta, SIP: sip, Code: 200} }},
		{"register", func(int) event.Event { return &event.Register{Meta: meta, SIP: sip, Account: "1001"} }},
		{"call_ended", func(int) event.Event { return &event.CallEnded{Meta: meta, SIP: sip, Account: "1001"} }},
		// auth failures spread over many sources and accounts so none trips
		{"auth_failure", func(i int) event.Event {
			return authFail(netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), 5060).String(), "1001", t0.Add(time.Duration(i)*time.Minute))
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			// every detector on: a honeypot list, the default jail,
			// enumeration sweeps, probes and locks
			e, _, _ := newEngine(b, "distributed: {max_sources: 1000000}\nhoneypot: {accounts: [\"9999\"]}\n")
			e.Known(src.Addr(), "1001")
			ctx := context.Background()
			evs := make([]event.Event, 4096)
			for i := range evs {
				evs[i] = tc.ev(i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.Check(ctx, evs[i%len(evs)])
				i++
			}
		})
	}
}

// BenchmarkAdmit measures the pre-parse gate: one busy source, and a
// million distinct sources (the flood table's worst case).
func BenchmarkAdmit(b *testing.B) {
	for _, n := range []int{1, 1 << 20} {
		name := "one-source"
		if n > 1 {
			name = "1M-sources"
		}
		b.Run(name, func(b *testing.B) {
			e, _, _ := newEngine(b, "flood: {limit: 1000000, stranger_limit: 1000000}\n") // the pass path
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e.Admit(netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}), t0.Add(time.Duration(i)*time.Microsecond))
				i = (i + 1) % n
			}
			b.ReportMetric(float64(e.FloodTableBytes()), "flood-table-bytes")
		})
	}
}

// BenchmarkChallenge measures the abandoned-challenge path: a 401 to a
// REGISTER without credentials (tracked as pending), the phone's
// credentialed REGISTER that answers it, and a request from a source with
// nothing pending while 4096 other sources have challenges pending.
func BenchmarkChallenge(b *testing.B) {
	const sources = 4096
	src := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), 5060)
	}
	challenge := func(i int) *event.Response {
		return &event.Response{Meta: event.Meta{Time: t0.Add(time.Duration(i) * time.Microsecond), Source: src(i % sources)},
			SIP: event.SIP{Method: "REGISTER", FromUser: "1001", ToUser: "1001"}, Code: 401}
	}
	answer := func(i int) *event.Request {
		return &event.Request{Meta: event.Meta{Time: t0.Add(time.Duration(i) * time.Microsecond), Source: src(i % sources)},
			SIP: event.SIP{Method: "REGISTER", FromUser: "1001", ToUser: "1001", AuthUser: "1001", HasCredentials: true}}
	}
	ctx := context.Background()
	b.Run("response_challenge", func(b *testing.B) {
		e, _, _ := newEngine(b, "")
		evs := make([]event.Event, sources)
		for i := range evs {
			evs[i] = challenge(i)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Check(ctx, evs[i%len(evs)])
			i++
		}
	})
	b.Run("challenge_then_answer", func(b *testing.B) {
		e, _, _ := newEngine(b, "")
		evs := make([]event.Event, 0, 2*sources)
		for i := range sources {
			evs = append(evs, challenge(i), answer(i))
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Check(ctx, evs[i%len(evs)])
			i++
		}
	})
	b.Run("request_others_pending", func(b *testing.B) {
		e, _, _ := newEngine(b, "")
		for i := range sources {
			e.Check(ctx, challenge(i))
		}
		req := &event.Request{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort("198.51.100.7:5060")},
			SIP: event.SIP{Method: "REGISTER", FromUser: "1002", ToUser: "1002", AuthUser: "1002", HasCredentials: true}}
		b.ReportAllocs()
		for b.Loop() {
			e.Check(ctx, req)
		}
	})
}

// BenchmarkCheckAnomaly is Check of a call attempt scored by a trained
// anomaly model (two generated weeks of 12 accounts): the week before's
// attempts replayed a week later, the engine's whole path included.
func BenchmarkCheckAnomaly(b *testing.B) {
	e, _, _ := newEngine(b, "anomaly: {country: GB}\n")
	opts := []byte(`{"Seed": 5, "Accounts": 12, "TrainDays": 14, "TestDays": 1, "FraudPerPattern": 1, "NoNoise": true}`)
	trainAnomaly(b, e, e.rules.Load().cfg, opts)
	var train bytes.Buffer
	var o fraudgen.Options
	if err := json.Unmarshal(opts, &o); err != nil {
		b.Fatal(err)
	}
	if _, err := fraudgen.Generate(o, &train, io.Discard); err != nil {
		b.Fatal(err)
	}
	recs, err := ReadReplay(&train)
	if err != nil {
		b.Fatal(err)
	}
	var evs []*event.CallAttempt
	for _, r := range recs {
		if ca, ok := r.Event.(*event.CallAttempt); ok && ca.Time.After(recs[len(recs)-1].Event.Base().Time.AddDate(0, 0, -7)) {
			evs = append(evs, ca)
		}
	}
	first, last := evs[0].Time, evs[len(evs)-1].Time
	week := 7 * 24 * time.Hour
	offs := make([]time.Duration, len(evs))
	for j, ev := range evs {
		offs[j] = ev.Time.Sub(first)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	flagged := 0
	for b.Loop() {
		ev := evs[i%len(evs)]
		ev.Time = last.Add(time.Duration(i/len(evs))*week + offs[i%len(evs)] + time.Second)
		if e.Check(ctx, ev).Rule != "" {
			flagged++
		}
		i++
	}
	b.ReportMetric(float64(flagged)/float64(i), "flagged/op")
}
