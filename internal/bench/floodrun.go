package bench

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

// flood bans floodSource through the CLI, then floods the pinned guard from
// it: first unpaced and alone, to find how many packets per second the
// guard drops on its core; then at 80 % of that rate together with 1,000
// legitimate req/s interleaved between guard and direct, to see what the
// flood does to legitimate latency.
func (r *runner) flood(ctx context.Context) error {
	l := r.pinned()
	return r.withGuard(ctx, l, func(d *daemon) error {
		if err := r.warmup(ctx, d); err != nil {
			return err
		}
		if err := d.ban(ctx, floodSource); err != nil {
			return err
		}
		setting := fmt.Sprintf("unpaced flood from a banned source, alone, %v, %s", r.o.FloodDuration, l)
		ph, err := r.floodPhase(ctx, d, Blaster{Source: floodSource, Target: d.sip, Duration: r.o.FloodDuration}, nil)
		if err != nil {
			return err
		}
		r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "offered by the flooder",
			Value: perSec(ph.sentPerSec(), "pkt")})
		r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "dropped by the guard's read filter",
			Value: fmt.Sprintf("%s, guard CPU %.0f %%", perSec(ph.gatePerSec(), "pkt"), 100*ph.cpu)})
		r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "dropped by the kernel (socket buffer full)",
			Value: perSec(ph.kernelPerSec(), "pkt")})
		r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "flood requests forwarded to the PBX",
			Value: thousands(ph.forwarded), Target: "0", Met: met(ph.forwarded == 0)})

		for _, rate := range []int{100_000, int(ph.gatePerSec() * 0.8)} {
			if err := r.floodWithLegit(ctx, d, l, rate); err != nil {
				return err
			}
		}
		return nil
	})
}

// floodWithLegit floods d at rate pkt/s from the banned source while 1,000
// legitimate req/s alternate between the guard and the responder.
func (r *runner) floodWithLegit(ctx context.Context, d *daemon, l Layout, rate int) error {
	setting := fmt.Sprintf("flood at %s pkt/s + 1,000 legit req/s interleaved, %v, %s", thousands(int64(rate)), r.o.FloodDuration, l)
	legit := sim.Load{Targets: []netip.AddrPort{d.sip, r.direct}, Rate: 1000,
		Count: int(1000 * r.o.FloodDuration.Seconds()), Sources: r.o.Sources, SourceBase: loadBase}
	ph2, err := r.floodPhase(ctx, d, Blaster{Source: floodSource, Target: d.sip, Rate: rate, Duration: r.o.FloodDuration}, &legit)
	if err != nil {
		return err
	}
	r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "flood offered / dropped by the guard / by the kernel",
		Value: fmt.Sprintf("%s / %s / %s", perSec(ph2.sentPerSec(), "pkt"), perSec(ph2.gatePerSec(), "pkt"), perSec(ph2.kernelPerSec(), "pkt"))})
	g, dir := ph2.legit.Targets[0], ph2.legit.Targets[1]
	r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "legit guard p50 / p99 (not 200 of sent)",
		Value: fmt.Sprintf("%s / %s (%d of %d)", us(g.Latency.Quantile(0.5)), us(g.Latency.Quantile(0.99)), g.Sent-g.Codes[200], g.Sent)})
	r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "legit direct p50 / p99 (not 200 of sent)",
		Value: fmt.Sprintf("%s / %s (%d of %d)", us(dir.Latency.Quantile(0.5)), us(dir.Latency.Quantile(0.99)), dir.Sent-dir.Codes[200], dir.Sent)})
	add99 := g.Latency.Quantile(0.99) - dir.Latency.Quantile(0.99)
	r.rep.add(Row{Scenario: ScenarioFlood, Setting: setting, Metric: "legit added p99",
		Value: us(add99), Target: "p99 added < 1 ms", Met: met(add99 < addedP99Target && g.Codes[200] == g.Sent)})
	r.rep.note("flood, %s: legit guard  %s", setting, &g.Latency)
	r.rep.note("flood, %s: legit direct %s", setting, &dir.Latency)
	return nil
}

// phase is what one flood phase measured.
type phase struct {
	elapsed   time.Duration
	sent      int64
	gate      float64 // packets the guard's read filter dropped
	kernel    int64   // datagrams the kernel dropped for a full buffer
	cpu       float64 // guard CPU as a fraction of one core
	forwarded int64   // requests the responder answered beyond the legit load
	legit     sim.LoadResult
}

func (p phase) sentPerSec() float64   { return float64(p.sent) / p.elapsed.Seconds() }
func (p phase) gatePerSec() float64   { return p.gate / p.elapsed.Seconds() }
func (p phase) kernelPerSec() float64 { return float64(p.kernel) / p.elapsed.Seconds() }

// floodPhase runs b, and legit alongside when set, and measures the guard.
func (r *runner) floodPhase(ctx context.Context, d *daemon, b Blaster, legit *sim.Load) (phase, error) {
	var p phase
	m0, err := d.metrics(ctx)
	if err != nil {
		return p, err
	}
	k0, err := ReadUDPRcvbufErrors()
	if err != nil {
		return p, err
	}
	c0, err := ReadProcCPU(d.pid())
	if err != nil {
		return p, err
	}
	a0 := r.resp.Answered()
	start := time.Now()
	type loadOut struct {
		res sim.LoadResult
		err error
	}
	done := make(chan loadOut, 1)
	if legit != nil {
		go func() {
			res, err := r.load(ctx, *legit)
			done <- loadOut{res, err}
		}()
	}
	p.sent, err = b.Run(ctx)
	if err != nil {
		return p, err
	}
	p.elapsed = time.Since(start)
	time.Sleep(200 * time.Millisecond) // let the guard empty its socket
	if legit != nil {
		out := <-done
		if out.err != nil {
			return p, out.err
		}
		p.legit = out.res
	}
	m1, err := d.metrics(ctx)
	if err != nil {
		return p, err
	}
	k1, err := ReadUDPRcvbufErrors()
	if err != nil {
		return p, err
	}
	c1, err := ReadProcCPU(d.pid())
	if err != nil {
		return p, err
	}
	const gate = `tollguard_sipfw_drops_total{reason="gate"}`
	p.gate = m1[gate] - m0[gate]
	p.kernel = k1 - k0
	p.cpu = (c1 - c0).Seconds() / time.Since(start).Seconds()
	p.forwarded = int64(r.resp.Answered() - a0)
	if legit != nil {
		p.forwarded -= int64(p.legit.Targets[0].Sent + p.legit.Targets[1].Sent) // the legit guard and direct requests
		p.forwarded = max(p.forwarded, 0)
	}
	fmt.Fprintf(r.o.Log, "  flood: sent %d in %v, gate drops %.0f, kernel drops %d, guard cpu %.0f%%\n",
		p.sent, p.elapsed.Round(time.Millisecond), p.gate, p.kernel, 100*p.cpu)
	return p, nil
}
