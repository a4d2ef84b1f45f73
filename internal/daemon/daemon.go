// Package daemon assembles the tollguard daemon from its components: config,
// ban set, engine, store, admin API, the sources that feed the engine (the
// inline proxy, FreeSWITCH's Event Socket, followed log files, in any
// combination) and the enforcers that act on its decisions (drop inline,
// call teardown, nftables, the fail2ban log). It owns their wiring and
// lifecycle and nothing else; each component does its own job.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/enforce/fail2ban"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/freeswitch"
	"github.com/tollguard/tollguard/internal/sipfw"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/web"
)

// Options are the daemon's outside dependencies.
type Options struct {
	// Logger receives the daemon's log. Required.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ConfigPath is reloaded on SIGHUP; empty disables reloads.
	ConfigPath string
	// SourceBackoff is the first wait before a failed sidecar source
	// (Event Socket, log file) is restarted; zero means 1s.
	SourceBackoff time.Duration
	// Fail2banClient is the fail2ban-client command line used with
	// log.fail2ban_jail; nil means fail2ban-client on PATH.
	Fail2banClient []string
}

// Guard is one running daemon.
type Guard struct {
	cfg   atomic.Pointer[config.Config]
	lists atomic.Pointer[decision.Lists]
	log   *slog.Logger
	now   func() time.Time
	path  string
	reg   *prometheus.Registry

	set   *decision.Set
	eng   *engine.Engine
	st    store.Store
	pers  *persister
	proxy *sipfw.Proxy // nil without sip.listen
	api   *api.Server
	// console is the web console (internal/web).
	console *web.Console
	f2b     *fail2ban.Writer // nil without log.fail2ban_file
	kern    *kernel          // nil without nftables.enabled
	check   recorder         // the engine and the store, as every source sees them
	pol     *policy          // call policy's side effects: kills, deadlines, lockdown state
	shr     shared           // other guards and feeds: cluster, failure stream, intel (cluster.go)
	alerts  *alerter         // alerts to the people on duty (enforce/alert)

	sources []namedSource      // sidecar sources: Event Socket, log files
	esl     *freeswitch.Source // nil without freeswitch.esl
	calls   *sidecarCalls      // the Event Socket's running calls; nil without it
	backoff time.Duration
	f2bCmd  []string
	killing chan struct{} // slots for refused calls being ended

	upstream []netip.Prefix // every route's PBX
	pbx      netip.Prefix   // the Event Socket's host: FreeSWITCH itself
	ready    chan struct{}

	anomalyDue time.Time // when the anomaly model is due for retraining
}

// New opens the store, reloads the bans in force (into the kernel sets too
// with nftables.enabled), and builds the engine, the sources and the admin
// API. Nothing listens or connects until Run.
func New(ctx context.Context, cfg *config.Config, o Options) (*Guard, error) {
	g := &Guard{log: o.Logger, now: o.Now, path: o.ConfigPath, reg: prometheus.NewRegistry(), set: decision.NewSet(), ready: make(chan struct{}),
		backoff: o.SourceBackoff, f2bCmd: o.Fail2banClient, killing: make(chan struct{}, maxKilling)}
	if g.now == nil {
		g.now = time.Now
	}
	g.cfg.Store(cfg)
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir: %w", err)
	}

	al, err := newAlerter(g, cfg.Alerts)
	if err != nil {
		return nil, err
	}
	g.alerts = al
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{Logger: g.log, Registry: g.reg, Now: g.now, OnCommit: al.commit, Node: cfg.StoreNode()})
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	g.st = st
	fail := func(err error) (*Guard, error) {
		if g.kern != nil {
			g.kern.nft.Close()
		}
		g.closeShared()
		st.Close()
		return nil, err
	}
	bans, err := st.ActiveBans(ctx, g.now())
	if err != nil {
		return fail(fmt.Errorf("reloading bans: %w", err))
	}
	for _, d := range bans {
		g.set.Add(d)
	}
	g.log.Info("bans reloaded from store", "count", len(bans))

	g.upstream = upstreamHosts(cfg)
	g.pbx = eslHost(cfg.FreeSWITCH)
	g.lists.Store(g.buildLists(cfg))
	g.pers = newPersister(st, g.log.With("component", "bans"))
	apply := decision.Fanout{g.set, g.pers, g.alerts}
	var rec recordFunc = st.Record
	if cfg.Log.Fail2banFile != "" {
		g.f2b, err = fail2ban.Open(cfg.Log.Fail2banFile, fail2ban.Options{Registry: g.reg})
		if err != nil {
			return fail(fmt.Errorf("opening log.fail2ban_file: %w", err))
		}
		// An unproven ban (a UDP source that may be forged) stays inline:
		// fail2ban acts on the whole address, and a forger must not aim it.
		apply = append(apply, provenOnly{g.f2b})
		rec = func(ev event.Event) { st.Record(ev); g.f2b.Observe(ev) }
	}
	if cfg.NFTables.Enabled {
		if err := g.openKernel(cfg, bans); err != nil {
			return fail(err)
		}
		apply = append(apply, g.kern) // proven single addresses only: kernel.eligible
	}
	if err := g.openShared(cfg); err != nil {
		return fail(err)
	}
	apply, rec = g.shareDecisions(apply), g.shareFailures(rec)
	fp, err := readFingerprints(cfg)
	if err != nil {
		return fail(err)
	}
	rates, secrets, err := readPolicyInputs(cfg)
	if err != nil {
		return fail(err)
	}
	g.pol = newPolicy(g)
	g.eng, err = engine.New(cfg, engine.Options{
		Set:   g.set,
		Lists: g.lists.Load(),
		Apply: g.pol.wrap(apply), Rates: rates, CallTokenSecrets: secrets,
		CallShare:    g.shareCalls(),
		Now:          g.now,
		Fingerprints: fp,
		Logger:       g.log,
		Registry:     g.reg,
	})
	if err != nil {
		return fail(fmt.Errorf("building engine: %w", err))
	}
	if err := g.reloadKnown(ctx, cfg); err != nil {
		return fail(err)
	}
	if err := g.pol.loadLockdown(); err != nil {
		return fail(err)
	}
	if g.anomalyDue, err = g.startAnomaly(ctx, cfg); err != nil {
		return fail(err)
	}
	g.check = recorder{next: g.eng, rec: rec, watch: g.alerts.observe}
	if g.sources, g.esl, err = g.buildSources(cfg); err != nil {
		return fail(err)
	}
	if len(cfg.Allow) == 0 {
		g.log.Warn("allow is empty: add your offices and SIP trunks, so that a NAT full of phones or a forged datagram cannot get them banned")
	}

	if sipEnabled(cfg) {
		tc, err := serverTLS(cfg.SIP.TLS)
		if err != nil {
			return fail(err)
		}
		key, err := sipfw.LoadOrCreateFlowKey(cfg.DataDir)
		if err != nil {
			return fail(err)
		}
		g.proxy, err = sipfw.New(sipfw.Options{
			Listen: cfg.SIP.Listen, Upstream: defaultUpstream(cfg), Routes: sipRoutes(cfg),
			AllowSources: config.Prefixes(cfg.SIP.AllowSources), DenySources: config.Prefixes(cfg.SIP.DenySources),
			WSOrigins: cfg.SIP.WSOrigins,
			Advertise: cfg.SIP.Advertise, TLS: tc,
			BannedResponse: cfg.SIP.BannedResponse, UpstreamTimeout: cfg.SIP.UpstreamTimeout.D(),
			MaxMessageSize: cfg.SIP.MaxMessageSize,
			FlowKey:        key, StripHeaders: cfg.SIP.StripHeaders, TokenHeader: cfg.CallTokens.Header,
			MaxConnections: cfg.SIP.MaxConnections, MaxConnectionsPerSource: cfg.SIP.MaxConnectionsPerSource,
			FirstMessageTimeout: cfg.SIP.FirstMessageTimeout.D(), UnregisteredIdle: cfg.SIP.UnregisteredIdleTimeout.D(),
			RegisteredIdle: cfg.SIP.RegisteredIdleTimeout.D(), DialogTimeout: cfg.SIP.DialogTimeout.D(),
			Checker:  recorder{next: g.eng, rec: rec, watch: g.alerts.observe},
			Gate:     g.eng,
			Greylist: g.eng,
			Logger:   g.log,
			Registry: g.reg,
			Now:      g.now,
		})
		if err != nil {
			return fail(fmt.Errorf("building proxy: %w", err))
		}
	}

	g.api, err = api.New(api.Options{
		Listen: cfg.Admin.Listen, DataDir: cfg.DataDir, Registry: g.reg, Logger: g.log,
		Bans: banService{g}, Audit: g.audit, Now: g.now,
	})
	if err != nil {
		return fail(fmt.Errorf("building admin API: %w", err))
	}
	g.api.MountEvents(st)
	g.api.MountPolicy(policyService{g.pol})
	g.mountShared()
	if g.proxy != nil {
		g.api.MountCalls(g.proxy) // running calls and their teardown live in the inline proxy
	} else if g.esl != nil {
		g.calls = newSidecarCalls(g.esl, g.log, cfg.SIP.DialogTimeout.D())
		g.api.MountCalls(g.calls) // beside FreeSWITCH: its channels, ended with uuid_kill
	}
	if err := g.buildConsole(cfg); err != nil {
		return fail(err)
	}
	g.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tollguard_bans_active", Help: "Bans in force on this node, expired ones not yet swept included.",
	}, func() float64 { return float64(g.set.Len()) }))
	return g, nil
}

// buildLists returns the allow/deny lists of cfg with the upstream allowed:
// the PBX is never banned, whatever passes through it.
func (g *Guard) buildLists(cfg *config.Config) *decision.Lists {
	l := decision.NewLists(config.Prefixes(cfg.Allow), config.Prefixes(cfg.Deny))
	for _, u := range g.upstream {
		l = l.AddAllow(u)
	}
	if g.pbx.IsValid() {
		l = l.AddAllow(g.pbx)
	}
	return l
}

func (g *Guard) config() *config.Config { return g.cfg.Load() }

// Ready is closed once every listener is bound.
func (g *Guard) Ready() <-chan struct{} { return g.ready }

// SIPAddrs returns the proxy's bound addresses by listen URL (after Ready).
func (g *Guard) SIPAddrs() map[string]net.Addr {
	if g.proxy == nil {
		return nil
	}
	return g.proxy.Addrs()
}

// AdminAddr returns the admin API's bound address (after Ready).
func (g *Guard) AdminAddr() net.Addr { return g.api.Addr() }

// Set returns the ban set (for the demo's printout).
func (g *Guard) Set() *decision.Set { return g.set }

// Registry returns the daemon's metrics registry (for the demo's printout).
func (g *Guard) Registry() *prometheus.Registry { return g.reg }

// Run serves until ctx is done, then stops the listeners, drains the ban
// queue and the event store, and returns. A component that fails stops the
// others; its error is returned.
func (g *Guard) Run(ctx context.Context) error {
	grp, gctx := errgroup.WithContext(ctx)
	if g.proxy != nil {
		grp.Go(func() error { return g.proxy.Run(gctx) })
	}
	grp.Go(func() error { return g.api.Run(gctx) })
	grp.Go(func() error { return g.runConsole(gctx) })
	grp.Go(func() error { return g.runSources(gctx) })
	if g.kern != nil {
		grp.Go(func() error { return g.kern.run(gctx) })
	}
	if g.calls != nil {
		grp.Go(func() error { g.calls.sweep(gctx, g.now); return nil })
	}
	grp.Go(func() error { return g.pers.run(gctx) })
	g.runShared(gctx, grp)
	grp.Go(func() error { return g.alerts.run(gctx) })
	grp.Go(func() error { g.pol.run(gctx); return nil })
	grp.Go(func() error { g.sweep(gctx); return nil })
	grp.Go(func() error { g.watchReload(gctx); return nil })
	sidecarLog(g.log, g.sources)
	grp.Go(func() error { g.retrainAnomaly(gctx, g.anomalyDue); return nil })
	grp.Go(func() error {
		if g.proxy != nil {
			select {
			case <-g.proxy.Ready():
			case <-gctx.Done():
				return nil
			}
		}
		select {
		case <-g.api.Ready():
		case <-gctx.Done():
			return nil
		}
		g.log.Info("tollguard ready", "sip", fmtAddrs(g.SIPAddrs()), "admin", g.api.Addr().String(), "upstream", g.config().SIP.Upstream)
		close(g.ready)
		return nil
	})
	err := grp.Wait()
	if g.f2b != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = errors.Join(err, g.f2b.Close(cctx))
		cancel()
	}
	if cerr := g.st.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("closing store: %w", cerr))
	}
	g.log.Info("tollguard stopped")
	return err
}

// sweep removes expired bans every second and records their expiry.
func (g *Guard) sweep(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, d := range g.set.Sweep(g.now()) {
			g.log.Info("ban expired", "scope", string(d.Scope), "target", d.Target(), "rule", d.Rule)
			g.st.Record(&event.Unban{Meta: event.Meta{Time: g.now(), Source: netip.AddrPortFrom(d.Prefix.Addr(), 0)},
				Scope: string(d.Scope), Value: d.Prefix.String(), Account: d.Account, Reason: "expired", Actor: "expiry"})
		}
	}
}

// audit records an admin action in the store.
func (g *Guard) audit(_ context.Context, a event.Admin) {
	if a.Time.IsZero() {
		a.Time = g.now()
	}
	g.st.Record(&a)
}

// notify logs an operator's decision (the engine logs its own) and
// alerts its bans.
func (g *Guard) notify(d decision.Decision) {
	g.alerts.Apply(d)
	if g.f2b != nil {
		g.f2b.Apply(d)
	}
	if g.kern != nil {
		g.kern.Apply(d)
	}
	g.shareOperator(d)
	if d.Type == decision.TypeUnban {
		g.log.Info("unban", "scope", string(d.Scope), "target", d.Target(), "by", d.Origin)
		return
	}
	g.log.Warn("ban", "scope", string(d.Scope), "target", d.Target(), "rule", d.Rule, "reason", d.Reason,
		"until", d.Until.Format(time.RFC3339), "count", d.Count)
}

func fmtAddrs(m map[string]net.Addr) []string {
	var out []string
	for _, a := range m {
		out = append(out, a.Network()+"://"+a.String())
	}
	return out
}
