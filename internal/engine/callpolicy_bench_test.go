package engine

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// policyConfig is call_policy with n rules: destination blocks, per-account
// limits and a catch-all burst rule, as a large operator writes them.
func policyConfig(n int) string {
	var b strings.Builder
	b.WriteString("call_policy:\n  default_country: CN\n  rules:\n")
	for i := range n - 1 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "    - {name: dest%d, match: {destinations: [\"+%d\"]}, action: reject}\n", i, 200+i)
		case 1:
			fmt.Fprintf(&b, "    - {name: acct%d, match: {accounts: [\"%d\"]}, block: {calls_per_minute: 10, concurrent: 2}}\n", i, 500000+i)
		default:
			fmt.Fprintf(&b, "    - {name: night%d, match: {hours: \"23:00-23:30\", sources: [\"10.%d.0.0/16\"]}, action: reject}\n", i, i%250)
		}
	}
	b.WriteString("    - {name: burst, match: {accounts: [\"*\"]}, warn: {calls_per_minute: 30}, block: {calls_per_minute: 60, concurrent: 20, sequential_same_number: 50, distinct_destinations_per_hour: 300, calls_per_day: 5000}}\n")
	return b.String()
}

// policyEngine builds an engine with 100 rules whose catch-all rule holds
// counters for accounts accounts, and the attempts of those accounts.
func policyEngine(tb testing.TB, accounts int) (*Engine, []*event.CallAttempt) {
	tb.Helper()
	cfg, err := config.Parse("bench.yaml", []byte(policyConfig(100)))
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(cfg, Options{Set: decision.NewSet(), Now: func() time.Time { return t0 }})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	evs := make([]*event.CallAttempt, accounts)
	for i := range evs {
		acct := fmt.Sprint(100000 + i)
		s := event.SIP{Method: "INVITE", CallID: "c" + acct, FromUser: acct, AuthUser: acct, HasCredentials: true,
			RURIUser: "13800138000", ToUser: "13800138000"}
		m := event.Meta{Time: t0, Source: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 5060)}
		evs[i] = &event.CallAttempt{Meta: m, SIP: s, Account: acct, Destination: "13800138000"}
		// one earlier call each, ended, so every account has counters
		e.Check(ctx, &event.CallAnswered{Meta: m, SIP: s, Account: acct, Destination: "13800138000"})
		e.Check(ctx, &event.CallEnded{Meta: m, SIP: s, Account: acct, Destination: "13800138000", Billsec: time.Minute, Cause: "bye"})
	}
	return e, evs
}

// BenchmarkCallPolicyVerdict is the verdict time of one INVITE (a call
// attempt that passes) with 100 rules and 100,000 accounts counted.
func BenchmarkCallPolicyVerdict(b *testing.B) {
	e, evs := policyEngine(b, 100_000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if v := e.Check(ctx, evs[i%len(evs)]); v.Action != Pass {
			b.Fatalf("verdict %+v", v)
		}
		i++
	}
}

// A call attempt that passes 100 rules does not allocate.
func TestCallPolicyPassDoesNotAllocate(t *testing.T) {
	e, evs := policyEngine(t, 1000)
	ctx := context.Background()
	ev := evs[7]
	e.Check(ctx, ev) // warm the destination cache
	if n := testing.AllocsPerRun(1000, func() { e.Check(ctx, ev) }); n != 0 {
		t.Errorf("Check of a passing call attempt allocates %v times", n)
	}
}
