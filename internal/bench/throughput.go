package bench

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

// rssTarget is the project's bar for the guard's RSS after 1M requests.
const rssTarget = 100_000_000

// sweepSources spreads the sweep over enough sources that no single one
// reaches the flood limit (200 requests in 2 s by default; the benchmark
// guard raises stranger_limit to it, see guardConfig) at 30k req/s.
const sweepSources = 1024

// throughput offers increasing rates to the guard alone (pinned layout)
// and reports what it forwards; the sustained rate is the highest offered
// rate answered with at most 0.1 % loss. The direct path at the same rates
// shows the driver's own ceiling on its core.
func (r *runner) throughput(ctx context.Context) error {
	l := r.pinned()
	setting := fmt.Sprintf("OPTIONS, %d sources, %v per step, %s", sweepSources, r.o.SweepStep, l)
	var top int
	err := r.withGuard(ctx, l, func(d *daemon) error {
		if err := r.warmup(ctx, d); err != nil {
			return err
		}
		for _, rate := range r.o.SweepRates {
			k0, err := ReadUDPRcvbufErrors()
			if err != nil {
				return err
			}
			g, cpu, err := r.step(ctx, d, d.sip, rate)
			if err != nil {
				return err
			}
			k1, err := ReadUDPRcvbufErrors()
			if err != nil {
				return err
			}
			// Only 200s were forwarded and answered by the responder; a
			// 503 is the guard giving up on a request or answer that was
			// lost, so it counts as a loss.
			ok := g.Codes[200]
			loss := float64(g.Sent-ok) / float64(max(g.Sent, 1))
			r.rep.add(Row{Scenario: ScenarioThroughput, Setting: setting + ", guard",
				Metric: fmt.Sprintf("offered %s req/s", thousands(int64(rate))),
				Value: fmt.Sprintf("%s answered 200, loss %.2f %% (%d unanswered, %d 503; kernel dropped %d datagrams), p50 %s, p99 %s, guard CPU %.0f %%",
					perSec(float64(ok)/r.o.SweepStep.Seconds(), "req"), 100*loss, g.Lost, g.Codes[503], k1-k0,
					us(g.Latency.Quantile(0.5)), us(g.Latency.Quantile(0.99)), 100*cpu)})
			if loss <= 0.001 {
				top = rate
			}
			if loss > 0.01 {
				break
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.sustained = top
	r.rep.add(Row{Scenario: ScenarioThroughput, Setting: setting, Metric: "highest offered rate forwarded with loss ≤ 0.1 %",
		Value: perSec(float64(top), "req")})
	// The driver alone on its core, at the highest swept rates, shows
	// whether the driver or the guard was the limit.
	for _, rate := range r.o.SweepRates[max(0, len(r.o.SweepRates)-2):] {
		g, _, err := r.step(ctx, nil, r.direct, rate)
		if err != nil {
			return err
		}
		r.rep.add(Row{Scenario: ScenarioThroughput, Setting: setting + ", direct (driver ceiling)",
			Metric: fmt.Sprintf("offered %s req/s", thousands(int64(rate))),
			Value: fmt.Sprintf("%s answered 200, loss %.2f %%, p99 %s", perSec(float64(g.Codes[200])/r.o.SweepStep.Seconds(), "req"),
				100*float64(g.Sent-g.Codes[200])/float64(max(g.Sent, 1)), us(g.Latency.Quantile(0.99)))})
	}
	return nil
}

// step offers rate req/s to target for SweepStep and returns the result
// and, with d set, the guard's CPU use as a fraction of one core.
func (r *runner) step(ctx context.Context, d *daemon, target netip.AddrPort, rate int) (*sim.TargetResult, float64, error) {
	var cpu0 time.Duration
	if d != nil {
		var err error
		if cpu0, err = ReadProcCPU(d.pid()); err != nil {
			return nil, 0, err
		}
	}
	res, err := r.load(ctx, sim.Load{Targets: []netip.AddrPort{target}, Rate: rate,
		Count: int(float64(rate) * r.o.SweepStep.Seconds()), Sources: sweepSources, Drain: 500 * time.Millisecond})
	if err != nil {
		return nil, 0, err
	}
	var cpu float64
	if d != nil {
		cpu1, err := ReadProcCPU(d.pid())
		if err != nil {
			return nil, 0, err
		}
		cpu = (cpu1 - cpu0).Seconds() / (res.Elapsed + 500*time.Millisecond).Seconds()
	}
	return res.Targets[0], cpu, nil
}

// rss sends RSSRequests requests through a fresh pinned guard and reads its
// resident set before and after.
func (r *runner) rss(ctx context.Context) error {
	l := r.pinned()
	rate := r.o.RSSRate
	if rate <= 0 {
		rate = 8000
		if r.sustained > 0 {
			rate = r.sustained * 6 / 10
		}
	}
	setting := fmt.Sprintf("%s OPTIONS at %s req/s, %d sources, %s", thousands(int64(r.o.RSSRequests)), thousands(int64(rate)), sweepSources, l)
	return r.withGuard(ctx, l, func(d *daemon) error {
		start, err := ReadProcStatus(d.pid())
		if err != nil {
			return err
		}
		res, err := r.load(ctx, sim.Load{Targets: []netip.AddrPort{d.sip}, Rate: rate, Count: r.o.RSSRequests,
			Sources: sweepSources, Drain: 2 * time.Second})
		if err != nil {
			return err
		}
		end, err := ReadProcStatus(d.pid())
		if err != nil {
			return err
		}
		g := res.Targets[0]
		r.rep.add(Row{Scenario: ScenarioRSS, Setting: setting, Metric: "guard RSS at start", Value: mb(start.RSS)})
		r.rep.add(Row{Scenario: ScenarioRSS, Setting: setting, Metric: "guard RSS after the run / peak (VmHWM)",
			Value: fmt.Sprintf("%s / %s", mb(end.RSS), mb(end.HWM)), Target: "< 100 MB", Met: met(end.HWM < rssTarget)})
		r.rep.add(Row{Scenario: ScenarioRSS, Setting: setting, Metric: "answered 200 / 503 / unanswered, p99",
			Value: fmt.Sprintf("%s / %s / %s, p99 %s", thousands(int64(g.Codes[200])), thousands(int64(g.Codes[503])), thousands(int64(g.Lost)), us(g.Latency.Quantile(0.99)))})
		return nil
	})
}
