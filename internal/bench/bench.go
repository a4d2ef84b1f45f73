// Package bench is the end-to-end benchmark driver: it runs the real guard
// binary (tollguard serve, a separate process so that its RSS and its one
// core are its own) in front of a sim.Responder, drives it with sim.Load
// interleaving guard and direct requests, floods it from a banned source,
// and reports the numbers against the project's targets. All traffic stays
// on 127.0.0.0/8.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

// Scenario names accepted in Options.Scenarios, in the order they run.
const (
	ScenarioLatency    = "latency"    // added latency, guard unpinned and pinned
	ScenarioLogging    = "logging"    // added latency with every event stored
	ScenarioThroughput = "throughput" // forwarded requests/s on one core
	ScenarioRSS        = "rss"        // RSS after RSSRequests requests
	ScenarioFlood      = "flood"      // banned-source flood drop rate and legit latency
)

// AllScenarios lists every scenario in run order.
var AllScenarios = []string{ScenarioLatency, ScenarioLogging, ScenarioThroughput, ScenarioRSS, ScenarioFlood}

// Options configure a benchmark run. Zero values take the defaults noted.
type Options struct {
	// Guard is the tollguard binary; required.
	Guard string
	// Scenarios to run; empty means AllScenarios.
	Scenarios []string
	// Rates are the latency scenario's request rates; default 1000, 5000.
	Rates []int
	// Duration is how long each latency and logging run sends; default 10s.
	Duration time.Duration
	// Sources is how many loopback source addresses the load uses;
	// default 512.
	Sources int
	// SweepRates are the throughput scenario's offered rates; the sweep
	// stops after the first rate that loses more than 1 %.
	SweepRates []int
	// SweepStep is how long each sweep rate is offered; default 3s.
	SweepStep time.Duration
	// RSSRequests is the request count of the RSS scenario; default 1e6.
	RSSRequests int
	// RSSRate is the RSS scenario's rate; zero means 60 % of the sustained
	// rate found by the throughput scenario, or 8000 without it.
	RSSRate int
	// FloodDuration is the length of each flood phase; default 5s.
	FloodDuration time.Duration
	// GuardCPU and DriverCPU are the cores of the pinned layout; the
	// defaults are 1 and 0. A negative GuardCPU disables pinning.
	GuardCPU, DriverCPU int
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

func (o *Options) defaults() {
	if len(o.Scenarios) == 0 {
		o.Scenarios = AllScenarios
	}
	if len(o.Rates) == 0 {
		o.Rates = []int{1000, 5000}
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Sources <= 0 {
		o.Sources = 512
	}
	if len(o.SweepRates) == 0 {
		o.SweepRates = []int{5000, 10000, 15000, 20000, 25000, 30000, 40000}
	}
	if o.SweepStep <= 0 {
		o.SweepStep = 3 * time.Second
	}
	if o.RSSRequests <= 0 {
		o.RSSRequests = 1_000_000
	}
	if o.FloodDuration <= 0 {
		o.FloodDuration = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Addresses on loopback: the responder, the guard's listener, the
// legitimate sources and the banned flood source.
var (
	responderAddr = netip.MustParseAddr("127.0.0.2")
	guardAddr     = netip.MustParseAddr("127.0.0.3")
	loadBase      = netip.MustParseAddr("127.1.0.1")
	floodSource   = netip.MustParseAddr("127.99.0.1")
)

// runner holds what the scenarios share.
type runner struct {
	o         Options
	tmp       string
	resp      *sim.Responder
	direct    netip.AddrPort
	rep       *Report
	sustained int // highest clean rate of the throughput sweep
}

// Run runs the selected scenarios and returns the report; a scenario that
// fails ends the run with what was measured so far and the error.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	if o.Guard == "" {
		return nil, fmt.Errorf("bench: no guard binary")
	}
	tmp, err := os.MkdirTemp("", "tollguard-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	resp, err := sim.NewResponder(ctx, netip.AddrPortFrom(responderAddr, 0))
	if err != nil {
		return nil, err
	}
	rctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- resp.Serve(rctx) }()
	defer func() { stop(); <-served }()

	r := &runner{o: o, tmp: tmp, resp: resp, direct: resp.Addr(), rep: &Report{Started: time.Now(), CPUs: runtime.NumCPU()}}
	for _, s := range o.Scenarios {
		fmt.Fprintf(o.Log, "== %s\n", s)
		// Other work on the machine skews tails; say how busy it was.
		if la, err := os.ReadFile("/proc/loadavg"); err == nil {
			r.rep.note("%s: load average before the scenario: %s", s, strings.TrimSpace(string(la)))
		}
		var err error
		switch s {
		case ScenarioLatency:
			err = r.latency(ctx)
		case ScenarioLogging:
			err = r.logging(ctx)
		case ScenarioThroughput:
			err = r.throughput(ctx)
		case ScenarioRSS:
			err = r.rss(ctx)
		case ScenarioFlood:
			err = r.flood(ctx)
		default:
			err = fmt.Errorf("bench: unknown scenario %q", s)
		}
		if err != nil {
			return r.rep, fmt.Errorf("scenario %s: %w", s, err)
		}
	}
	r.rep.Elapsed = time.Since(r.rep.Started)
	return r.rep, nil
}

// pinned is the one-core layout, or the unpinned one when pinning is off.
func (r *runner) pinned() Layout { return Layout{CPU: r.o.GuardCPU} }

// pinDriver confines this process to cpu (all CPUs when negative) with a
// matching GOMAXPROCS, so that in the pinned layout the load generator and
// responder do not compete with the guard's core.
func (r *runner) pinDriver(cpu int) error {
	if r.o.GuardCPU < 0 {
		return nil
	}
	list, procs := fmt.Sprintf("0-%d", r.rep.CPUs-1), r.rep.CPUs
	if cpu >= 0 {
		list, procs = strconv.Itoa(cpu), 1
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", list, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: pinning the driver to cpu %s: %w: %s", list, err, out)
	}
	runtime.GOMAXPROCS(procs)
	return nil
}

// withGuard pins the driver for layout l, starts a fresh guard, runs fn,
// and stops the guard.
func (r *runner) withGuard(ctx context.Context, l Layout, fn func(d *daemon) error) error {
	driverCPU := -1
	if l.CPU >= 0 {
		driverCPU = r.o.DriverCPU
	}
	if err := r.pinDriver(driverCPU); err != nil {
		return err
	}
	d, err := startDaemon(ctx, r.o.Guard, r.tmp, r.direct, guardAddr, l)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.o.Log, "guard pid %d on %s (%s)\n", d.pid(), d.sip, l)
	ferr := fn(d)
	if err := d.stop(); err != nil && ferr == nil {
		ferr = fmt.Errorf("stopping guard: %w; log:\n%s", err, d.tail())
	}
	return ferr
}

// load runs one sim.Load and logs its result lines.
func (r *runner) load(ctx context.Context, l sim.Load) (sim.LoadResult, error) {
	if l.Sources == 0 {
		l.Sources = r.o.Sources
	}
	if !l.SourceBase.IsValid() {
		l.SourceBase = loadBase
	}
	res, err := l.Run(ctx)
	if err != nil {
		return res, err
	}
	for _, t := range res.Targets {
		fmt.Fprintf(r.o.Log, "  %d req/s %s: %s\n", l.Rate, r.name(t.Target), t)
	}
	fmt.Fprintf(r.o.Log, "  elapsed %v, max send lag %v\n", res.Elapsed.Round(time.Millisecond), res.MaxLag.Round(time.Microsecond))
	return res, nil
}

func (r *runner) name(t netip.AddrPort) string {
	if t == r.direct {
		return "direct"
	}
	return "guard"
}
