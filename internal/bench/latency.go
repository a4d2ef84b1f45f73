package bench

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

// addedP99Target is the project's bar for the guard's added p99 latency.
const addedP99Target = time.Millisecond

// latency measures the added latency at each rate, first with the guard
// unpinned (sharing both cores with the load generator and responder),
// then in the pinned one-core layout.
func (r *runner) latency(ctx context.Context) error {
	layouts := []Layout{{CPU: -1}}
	if r.o.GuardCPU >= 0 {
		layouts = append(layouts, r.pinned())
	}
	for _, l := range layouts {
		err := r.withGuard(ctx, l, func(d *daemon) error {
			if err := r.warmup(ctx, d); err != nil {
				return err
			}
			for _, rate := range r.o.Rates {
				if _, err := r.interleaved(ctx, d, ScenarioLatency, fmt.Sprintf("%s req/s OPTIONS, %s", thousands(int64(rate)), l), rate, "OPTIONS", rate == 1000); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// logging measures the added latency of REGISTER traffic in the pinned
// layout: every 200 to a REGISTER is an event the store writes, so the
// store records every request. It checks afterwards that it did.
func (r *runner) logging(ctx context.Context) error {
	l := r.pinned()
	return r.withGuard(ctx, l, func(d *daemon) error {
		if err := r.warmup(ctx, d); err != nil {
			return err
		}
		before, err := d.metrics(ctx)
		if err != nil {
			return err
		}
		const rate = 1000
		setting := fmt.Sprintf("1,000 req/s REGISTER, every response stored, %s", l)
		res, err := r.interleaved(ctx, d, ScenarioLogging, setting, rate, "REGISTER", true)
		if err != nil {
			return err
		}
		time.Sleep(time.Second) // one flush interval and then some
		after, err := d.metrics(ctx)
		if err != nil {
			return err
		}
		written := after["tollguard_store_events_written_total"] - before["tollguard_store_events_written_total"]
		dropped := after["tollguard_store_events_dropped_total"] - before["tollguard_store_events_dropped_total"]
		answered := res.Targets[0].Answered
		r.rep.add(Row{Scenario: ScenarioLogging, Setting: setting, Metric: "events stored / guard requests answered",
			Value:  fmt.Sprintf("%s / %s (%s dropped)", thousands(int64(written)), thousands(int64(answered)), thousands(int64(dropped))),
			Target: "every event stored", Met: met(written >= float64(answered) && dropped == 0)})
		return nil
	})
}

// warmup sends one second of interleaved traffic that is not measured.
func (r *runner) warmup(ctx context.Context, d *daemon) error {
	_, err := sim.Load{Targets: []netip.AddrPort{d.sip, r.direct}, Rate: 1000, Count: 1000, Sources: r.o.Sources,
		SourceBase: loadBase, Drain: 500 * time.Millisecond}.Run(ctx)
	return err
}

// interleaved runs rate req/s alternating between the guard and the
// responder for Options.Duration and adds the latency rows; with target
// set, the added p99 is checked against addedP99Target.
func (r *runner) interleaved(ctx context.Context, d *daemon, scenario, setting string, rate int, method string, target bool) (sim.LoadResult, error) {
	count := int(float64(rate) * r.o.Duration.Seconds())
	res, err := r.load(ctx, sim.Load{Targets: []netip.AddrPort{d.sip, r.direct}, Rate: rate, Count: count, Method: method})
	if err != nil {
		return res, err
	}
	g, dir := res.Targets[0], res.Targets[1]
	gh, dh := &g.Latency, &dir.Latency
	add50 := gh.Quantile(0.5) - dh.Quantile(0.5)
	add99 := gh.Quantile(0.99) - dh.Quantile(0.99)
	row := Row{Scenario: scenario, Setting: setting, Metric: "added latency p50 / p99",
		Value: fmt.Sprintf("%s / %s", us(add50), us(add99))}
	if target {
		row.Target = "p99 added < 1 ms"
		row.Met = met(add99 < addedP99Target && g.Codes[200] == g.Sent)
	}
	r.rep.add(row)
	r.rep.add(Row{Scenario: scenario, Setting: setting, Metric: "guard p50 / p99 / p99.9 / max",
		Value: fmt.Sprintf("%s / %s / %s / %s", us(gh.Quantile(0.5)), us(gh.Quantile(0.99)), us(gh.Quantile(0.999)), us(gh.Max()))})
	r.rep.add(Row{Scenario: scenario, Setting: setting, Metric: "direct p50 / p99 / p99.9 / max",
		Value: fmt.Sprintf("%s / %s / %s / %s", us(dh.Quantile(0.5)), us(dh.Quantile(0.99)), us(dh.Quantile(0.999)), us(dh.Max()))})
	r.rep.add(Row{Scenario: scenario, Setting: setting, Metric: "200 OK guard / direct, of sent",
		Value: fmt.Sprintf("%s / %s of %s / %s", thousands(int64(g.Codes[200])), thousands(int64(dir.Codes[200])), thousands(int64(g.Sent)), thousands(int64(dir.Sent)))})
	r.rep.note("%s, %s: guard  %s", scenario, setting, gh)
	r.rep.note("%s, %s: direct %s", scenario, setting, dh)
	if res.MaxLag > 5*time.Millisecond {
		r.rep.note("%s, %s: load generator fell behind its schedule by up to %v", scenario, setting, res.MaxLag.Round(time.Microsecond))
	}
	return res, nil
}
