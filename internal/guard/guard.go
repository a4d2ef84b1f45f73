// Package guard assembles the tollguard daemon from its components: config,
// ban set, engine, store, inline proxy and admin API. It owns their wiring
// and lifecycle and nothing else; each component does its own job.
package guard

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
	"github.com/tollguard/tollguard/internal/sipfw"
	"github.com/tollguard/tollguard/internal/store"
)

// Options are the daemon's outside dependencies.
type Options struct {
	// Logger receives the daemon's log. Required.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ConfigPath is reloaded on SIGHUP; empty disables reloads.
	ConfigPath string
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
	f2b   *fail2ban.Writer // nil without log.fail2ban_file

	upstream netip.Prefix
	ready    chan struct{}

	anomalyDue time.Time // when the anomaly model is due for retraining
}

// New opens the store, reloads the bans in force, and builds the engine,
// proxy and admin API. Nothing listens until Run.
func New(ctx context.Context, cfg *config.Config, o Options) (*Guard, error) {
	g := &Guard{log: o.Logger, now: o.Now, path: o.ConfigPath, reg: prometheus.NewRegistry(), set: decision.NewSet(), ready: make(chan struct{})}
	if g.now == nil {
		g.now = time.Now
	}
	g.cfg.Store(cfg)
	g.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir: %w", err)
	}

	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{Logger: g.log, Registry: g.reg, Now: g.now})
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	g.st = st
	fail := func(err error) (*Guard, error) {
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

	if cfg.SIP.Upstream != "" {
		u, _ := config.ParseSIPURL(cfg.SIP.Upstream, "udp", "tcp") // validated
		host, _, _ := net.SplitHostPort(u.Host)
		if a, err := netip.ParseAddr(host); err == nil {
			g.upstream = decision.HostPrefix(a)
		}
	}
	g.lists.Store(g.buildLists(cfg))
	g.pers = newPersister(st, g.log.With("component", "bans"))
	apply := decision.Fanout{g.set, g.pers}
	var rec recordFunc = st.Record
	if cfg.Log.Fail2banFile != "" {
		g.f2b, err = fail2ban.Open(cfg.Log.Fail2banFile, fail2ban.Options{Registry: g.reg})
		if err != nil {
			return fail(fmt.Errorf("opening log.fail2ban_file: %w", err))
		}
		// An unproven ban (a UDP source that may be forged) stays inline:
		// fail2ban acts on every port, and a forger must not aim it.
		apply = append(apply, provenOnly{g.f2b})
		rec = func(ev event.Event) { st.Record(ev); g.f2b.Observe(ev) }
	}
	fp, err := readFingerprints(cfg)
	if err != nil {
		return fail(err)
	}
	g.eng, err = engine.New(cfg, engine.Options{
		Set:          g.set,
		Lists:        g.lists.Load(),
		Apply:        apply,
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
	if g.anomalyDue, err = g.startAnomaly(ctx, cfg); err != nil {
		return fail(err)
	}
	if len(cfg.Allow) == 0 {
		g.log.Warn("allow is empty: add your offices and SIP trunks, so that a NAT full of phones or a forged datagram cannot get them banned")
	}

	if len(cfg.SIP.Listen) > 0 {
		tc, err := serverTLS(cfg.SIP.TLS)
		if err != nil {
			return fail(err)
		}
		key, err := sipfw.LoadOrCreateFlowKey(cfg.DataDir)
		if err != nil {
			return fail(err)
		}
		g.proxy, err = sipfw.New(sipfw.Options{
			Listen: cfg.SIP.Listen, Upstream: cfg.SIP.Upstream, Advertise: cfg.SIP.Advertise, TLS: tc,
			BannedResponse: cfg.SIP.BannedResponse, UpstreamTimeout: cfg.SIP.UpstreamTimeout.D(),
			MaxMessageSize: cfg.SIP.MaxMessageSize,
			FlowKey:        key, StripHeaders: cfg.SIP.StripHeaders,
			MaxConnections: cfg.SIP.MaxConnections, MaxConnectionsPerSource: cfg.SIP.MaxConnectionsPerSource,
			FirstMessageTimeout: cfg.SIP.FirstMessageTimeout.D(), UnregisteredIdle: cfg.SIP.UnregisteredIdleTimeout.D(),
			RegisteredIdle: cfg.SIP.RegisteredIdleTimeout.D(), DialogTimeout: cfg.SIP.DialogTimeout.D(),
			Checker:  recorder{next: g.eng, rec: rec},
			Gate:     g.eng,
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
	if g.proxy != nil {
		g.api.MountCalls(g.proxy) // running calls and their teardown live in the inline proxy
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
	if g.upstream.IsValid() {
		l = l.AddAllow(g.upstream)
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

// Run serves until ctx is done, then stops the listeners, drains the ban
// queue and the event store, and returns. A component that fails stops the
// others; its error is returned.
func (g *Guard) Run(ctx context.Context) error {
	grp, gctx := errgroup.WithContext(ctx)
	if g.proxy != nil {
		grp.Go(func() error { return g.proxy.Run(gctx) })
	}
	grp.Go(func() error { return g.api.Run(gctx) })
	grp.Go(func() error { return g.pers.run(gctx) })
	grp.Go(func() error { g.sweep(gctx); return nil })
	grp.Go(func() error { g.watchReload(gctx); return nil })
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

// notify logs an operator's decision (the engine logs its own).
func (g *Guard) notify(d decision.Decision) {
	if g.f2b != nil {
		g.f2b.Apply(d)
	}
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
