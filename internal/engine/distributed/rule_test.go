package distributed

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// TestLock walks one lock: failures from max_sources addresses lock the
// account; during the lock the phone's address passes, a new address may
// try once, the budget of new-address failures bounds the rest.
func TestLock(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r, err := Compile(config.Distributed{FindTime: config.Duration(10 * time.Minute), MaxSources: 3, LockTime: config.Duration(30 * time.Minute), NewSources: 2}, 64)
	if err != nil {
		t.Fatal(err)
	}
	sh := &detector.Shared{Set: decision.NewSet(), Known: detector.NewKnown(64)}
	phone := netip.MustParseAddr("198.51.100.10")
	sh.Known.Registered(phone, "1001")
	addr := func(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("203.0.113.%d", i)) }
	now := t0
	input := func(src netip.Addr) *detector.Input {
		now = now.Add(time.Second)
		in := &detector.Input{Now: now, Src: src, SIP: &event.SIP{Method: "REGISTER"}, Account: "1001"}
		in.Names.Add("1001")
		return in
	}
	fail := func(src netip.Addr) []decision.Decision {
		var out detector.Out
		r.Failure(sh, input(src), &out)
		for _, d := range out.Decisions() {
			sh.Set.Apply(d)
		}
		return append([]decision.Decision(nil), out.Decisions()...)
	}
	request := func(src netip.Addr) detector.Verdict {
		var out detector.Out
		r.Request(sh, input(src), &out)
		return out.V
	}
	steps := []struct {
		name string
		do   func() bool
	}{
		{"two addresses do not lock", func() bool { return len(fail(addr(1))) == 0 && len(fail(addr(2))) == 0 }},
		{"the third locks", func() bool { d := fail(addr(3)); return len(d) == 1 && d[0].Scope == decision.ScopeAccount }},
		{"the phone's address passes", func() bool { return request(phone).Action == detector.Pass }},
		{"an address that tripped the lock is refused", func() bool { return request(addr(1)).Action == detector.Reject }},
		{"a new address may try", func() bool { return request(addr(4)).Action == detector.Pass }},
		{"its first failure bans it for the account", func() bool {
			d := fail(addr(4))
			return len(d) == 1 && d[0].Scope == decision.ScopeIPAccount && d[0].Account == "1001"
		}},
		{"then it is refused", func() bool { return request(addr(4)).Action == detector.Reject }},
		{"a second new address spends the budget", func() bool { return request(addr(5)).Action == detector.Pass && len(fail(addr(5))) == 1 }},
		{"the budget is spent: new addresses refused", func() bool { return request(addr(6)).Action == detector.Reject }},
		{"the phone's own failure is not a new address's", func() bool { return len(fail(phone)) == 0 && request(phone).Action == detector.Pass }},
		{"the budget refills after findtime", func() bool { now = now.Add(10 * time.Minute); return request(addr(6)).Action == detector.Pass }},
		{"a new address that registers gives its slot back", func() bool {
			var out detector.Out
			r.Registered(sh, input(addr(6)), &out)
			sh.Known.Registered(addr(6), "1001")
			return request(addr(7)).Action == detector.Pass && request(addr(8)).Action == detector.Pass
		}},
		{"slots are taken at the first request, before any failure", func() bool { return request(addr(9)).Action == detector.Reject }},
		{"a slot holder may send again", func() bool { return request(addr(7)).Action == detector.Pass }},
	}
	for _, s := range steps {
		if !s.do() {
			t.Fatalf("step %q failed", s.name)
		}
	}
}
