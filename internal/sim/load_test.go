package sim_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

func startResponder(t *testing.T) *sim.Responder {
	t.Helper()
	r, err := sim.NewResponder(context.Background(), netip.AddrPortFrom(source(), 0))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r
}

func TestLoadAgainstResponder(t *testing.T) {
	tests := []struct {
		name    string
		targets int
		method  string
		count   int
	}{
		{name: "one target OPTIONS", targets: 1, method: "OPTIONS", count: 400},
		{name: "two targets interleaved REGISTER", targets: 2, method: "REGISTER", count: 600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var targets []netip.AddrPort
			var resps []*sim.Responder
			for range tc.targets {
				r := startResponder(t)
				resps = append(resps, r)
				targets = append(targets, r.Addr())
			}
			res, err := sim.Load{Targets: targets, Rate: 4000, Count: tc.count, Sources: 16,
				SourceBase: netip.MustParseAddr("127.3.0.1"), Method: tc.method}.Run(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Targets) != tc.targets {
				t.Fatalf("%d target results, want %d", len(res.Targets), tc.targets)
			}
			for i, tr := range res.Targets {
				t.Logf("target %d: %s (max send lag %v)", i, tr, res.MaxLag)
				want := tc.count / tc.targets
				if tr.Sent != want || tr.Answered != want || tr.Lost != 0 || tr.Codes[200] != want {
					t.Errorf("target %d: %s, want %d sent and answered 200", i, tr, want)
				}
				// Each of the 16 sources greets each target once first.
				if got := resps[i].Answered(); got != uint64(want+16) {
					t.Errorf("responder %d answered %d, want %d and 16 greetings", i, got, want)
				}
				if tr.Greeting.Count() != 16 || tr.Ungreeted != 0 {
					t.Errorf("target %d: %d greetings answered, %d not; want 16, 0", i, tr.Greeting.Count(), tr.Ungreeted)
				}
				h := &tr.Latency
				p50, p99 := h.Quantile(0.5), h.Quantile(0.99)
				if h.Count() != uint64(want) || h.Min() <= 0 || p50 < h.Min().Truncate(time.Microsecond) ||
					p50 > p99 || p99 > h.Max() || h.Max() > time.Second {
					t.Errorf("target %d latency not sane: %s", i, h)
				}
			}
		})
	}
}

func TestLoadRejectsBadInput(t *testing.T) {
	tgt := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	tests := []struct {
		name string
		load sim.Load
	}{
		{name: "no target", load: sim.Load{Rate: 1, Count: 1}},
		{name: "three targets", load: sim.Load{Targets: append(append(tgt, tgt...), tgt...), Rate: 1, Count: 1}},
		{name: "zero rate", load: sim.Load{Targets: tgt, Count: 1}},
		{name: "count too large", load: sim.Load{Targets: tgt, Rate: 1, Count: sim.MaxLoadCount + 1}},
		{name: "bad method", load: sim.Load{Targets: tgt, Rate: 1, Count: 1, Method: "INVITE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.load.Run(context.Background()); err == nil {
				t.Error("Run succeeded, want an error")
			}
		})
	}
}

func TestLoadCountsLoss(t *testing.T) {
	// A target that answers 10 requests then goes silent.
	res, err := sim.Load{Targets: []netip.AddrPort{cutoff(t, 10)}, Rate: 5000, Count: 50, Sources: 4,
		SourceBase: netip.MustParseAddr("127.3.1.1"), Drain: 100 * time.Millisecond}.Run(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The 4 sources' greetings take the first 4 answers.
	tr := res.Targets[0]
	if tr.Greeting.Count() != 4 || tr.Ungreeted != 0 {
		t.Errorf("greetings answered %d, unanswered %d; want 4, 0", tr.Greeting.Count(), tr.Ungreeted)
	}
	if tr.Sent != 50 || tr.Answered != 6 || tr.Lost != 44 || tr.Latency.Count() != 6 {
		t.Errorf("result = %s, want 50 sent, 6 answered, 44 lost", tr)
	}
}
