package daemon

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/freeswitch"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
)

// BenchmarkSidecarJudge is the sidecar's path for one Event Socket event
// on one core: frame parsed and percent-decoded, mapped, admitted and
// judged by the engine, recorded for the store. The mix is a
// register_attempt + register_failure pair and a call's three channel
// events, from 4,096 addresses (so bans happen along the way).
func BenchmarkSidecarJudge(b *testing.B) {
	cfg := sidecarConfig(b, nil)
	g, err := New(b.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer g.st.Close()
	now := time.Now()
	var payloads [][]byte
	for i := range 4096 {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255+1)
		uuid := fmt.Sprintf("37e9b766-5256-4e4b-b1ed-%012x", i)
		for _, e := range []string{
			esltest.RegisterAttempt("1001", "1001", ip, "5071", "friendly-scanner", "FORBIDDEN"),
			esltest.RegisterFailure("1001", ip, "5071", "friendly-scanner", "REGISTER"),
			esltest.ChannelEventFrom("CHANNEL_CREATE", uuid, ip, "1003", "0046701234567", "inbound", "Yealink"),
			esltest.ChannelEventFrom("CHANNEL_ANSWER", uuid, ip, "1003", "0046701234567", "inbound", "Yealink"),
			esltest.ChannelEventFrom("CHANNEL_HANGUP_COMPLETE", uuid, ip, "1003", "0046701234567", "inbound", "Yealink"),
		} {
			payloads = append(payloads, []byte(esltest.At(e, now)))
		}
	}
	m := freeswitch.NewMapper()
	ctx := b.Context()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		ev, err := freeswitch.ParsePlain(payloads[n%len(payloads)])
		if err != nil {
			b.Fatal(err)
		}
		if tg, _ := m.Map(ev); tg != nil {
			g.judge(ctx, tg)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}
