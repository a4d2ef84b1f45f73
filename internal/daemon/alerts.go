package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/enforce/alert"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/engine/anomaly"
	"github.com/tollguard/tollguard/internal/engine/callpolicy"
	"github.com/tollguard/tollguard/internal/event"
)

// alerter is the daemon's side of enforce/alert: it builds the Notifier
// from alerts:, runs it, rebuilds it on a reload that changes alerts:,
// turns decisions, verdicts and outage transitions into alerts, and
// records every message sent, failed or dropped as an event. Every hook
// is safe on the packet path: Notify never blocks and does no I/O.
type alerter struct {
	g       *Guard
	log     *slog.Logger
	cur     atomic.Pointer[alert.Notifier]
	swapped chan struct{} // a reload built a new Notifier
	every   time.Duration // how often upstream and Event Socket health is polled

	mu  sync.Mutex // cfg, during a reload
	cfg config.Alerts

	storeDown atomic.Bool

	fmu    sync.Mutex
	failed map[netip.Addr]failureBan // addresses banned for register failures
}

// failureBan is a ban for authentication failures: a later successful
// registration from the same address for the same account (any account
// for an address ban) means the guessing worked.
type failureBan struct {
	account string // "" for an address ban
	at      time.Time
}

const (
	// maxFailureBans bounds the remembered failure bans; when full, new
	// ones are not remembered (the ban itself is still alerted).
	maxFailureBans = 4096
	// failureBanMemory is how long a failure ban is remembered.
	failureBanMemory = 24 * time.Hour
)

func newAlerter(g *Guard, cfg config.Alerts) (*alerter, error) {
	a := &alerter{g: g, log: g.log.With("component", "alert"), swapped: make(chan struct{}, 1), every: time.Second,
		cfg: cfg, failed: map[netip.Addr]failureBan{}}
	n, err := alert.New(cfg, a.options(true))
	if err != nil {
		return nil, fmt.Errorf("building alerts: %w", err)
	}
	a.cur.Store(n)
	return a, nil
}

// options are the Notifier's collaborators; register puts its metrics on
// the daemon's registry (false: a trial build that only validates).
func (a *alerter) options(register bool) alert.Options {
	o := alert.Options{Logger: a.g.log, Now: a.g.now, OnReport: a.report}
	if register {
		o.Registry = a.g.reg
	}
	return o
}

// notify hands al to the current Notifier; it never blocks.
func (a *alerter) notify(al alert.Alert) {
	if al.Time.IsZero() {
		al.Time = a.g.now()
	}
	a.cur.Load().Notify(al)
}

// report records one message's outcome in the store as an admin event by
// actor "alert": alert_sent, alert_failed or alert_dropped, the channel as
// target (`tollguard events --kind admin`).
func (a *alerter) report(r alert.Report) {
	action, detail := "alert_sent", fmt.Sprintf("kind=%s severity=%s count=%d attempts=%d", r.Kind, r.Severity, r.Count, r.Attempts)
	if r.Err != nil {
		action = "alert_failed"
		if r.Err == alert.ErrOutboxFull {
			action = "alert_dropped"
		}
		detail += " err=" + capN(r.Err.Error(), 200)
	}
	a.g.st.Record(&event.Admin{Meta: event.Meta{Time: a.g.now()}, Actor: "alert", Action: action, Target: r.Channel, Detail: detail})
}

// prepare checks that cfg's alerts build, before a reload swaps anything.
// It reports whether alerts: changed.
func (a *alerter) prepare(cfg *config.Config) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if reflect.DeepEqual(a.cfg, cfg.Alerts) {
		return false, nil
	}
	if _, err := alert.New(cfg.Alerts, a.options(false)); err != nil {
		return false, fmt.Errorf("building alerts: %w", err)
	}
	return true, nil
}

// reload replaces the Notifier with one built from cfg (checked by
// prepare). Alerts still queued in the old one are not sent.
func (a *alerter) reload(cfg *config.Config) {
	a.mu.Lock()
	defer a.mu.Unlock()
	alert.UnregisterMetrics(a.g.reg)
	n, err := alert.New(cfg.Alerts, a.options(true))
	if err != nil { // prepare built the same config: only registration can fail
		a.log.Error("alerts not reloaded", "err", err)
		return
	}
	a.cfg = cfg.Alerts
	a.cur.Store(n)
	select {
	case a.swapped <- struct{}{}:
	default:
	}
	a.log.Info("alerts reloaded", "channels", len(cfg.Alerts.Channels))
}

// run runs the current Notifier, and its replacement after a reload, and
// polls upstream and Event Socket health, until ctx ends.
func (a *alerter) run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { a.watch(ctx) })
	defer wg.Wait()
	for {
		nctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		n := a.cur.Load()
		go func() { n.Run(nctx); close(done) }()
		select {
		case <-ctx.Done():
			cancel()
			<-done
			return nil
		case <-a.swapped:
			cancel()
			<-done
		}
	}
}

// Apply implements decision.Applier: a ban (engine's or operator's) is a
// ban alert, an account lock (the distributed rule) a compromised-account
// alert. Bans for authentication failures are remembered for registered.
func (a *alerter) Apply(d decision.Decision) {
	if d.Type != decision.TypeBan {
		return
	}
	al := alert.Alert{Kind: alert.KindBan, Time: d.At, Account: d.Account, Rule: d.Rule, Reason: d.Reason}
	if !d.Until.IsZero() {
		al.For = d.Until.Sub(d.At)
	}
	switch d.Scope {
	case decision.ScopeAccount:
		al.Kind = alert.KindCompromised
	case decision.ScopeIP, decision.ScopeIPAccount:
		al.Addr = d.Prefix.Addr()
		if strings.HasPrefix(d.Rule, "register_failure") {
			a.rememberFailure(al.Addr, d)
		}
	default:
		al.Addr, al.Reason = d.Prefix.Addr(), d.Prefix.String()+": "+d.Reason
	}
	a.notify(al)
}

func (a *alerter) rememberFailure(addr netip.Addr, d decision.Decision) {
	a.fmu.Lock()
	defer a.fmu.Unlock()
	if len(a.failed) >= maxFailureBans {
		now := a.g.now()
		for k, v := range a.failed {
			if now.Sub(v.at) > failureBanMemory {
				delete(a.failed, k)
			}
		}
		if len(a.failed) >= maxFailureBans {
			return
		}
	}
	acct := ""
	if d.Scope == decision.ScopeIPAccount {
		acct = d.Account
	}
	a.failed[addr] = failureBan{account: acct, at: d.At}
}

// registered alerts a successful registration from an address that was
// banned for authentication failures on that account (on any account,
// for an address ban) within the last day: the guessing worked. Once per
// ban.
func (a *alerter) registered(e *event.Register) {
	addr := e.Source.Addr()
	a.fmu.Lock()
	fb, ok := a.failed[addr]
	hit := ok && (fb.account == "" || fb.account == e.Account) && e.Time.Sub(fb.at) <= failureBanMemory
	if hit {
		delete(a.failed, addr)
	}
	a.fmu.Unlock()
	if hit {
		a.notify(alert.Alert{Kind: alert.KindCompromised, Time: e.Time, Addr: addr, Account: e.Account,
			UserAgent: e.UserAgent, Rule: "register_after_ban", Reason: "registered from an address banned for failed logins on it"})
	}
}

// observe sees every event and its verdict (the recorder): registrations
// for registered; call attempts' verdicts, where call policy and the
// anomaly model decide, for verdict.
func (a *alerter) observe(ev event.Event, v engine.Verdict) {
	switch e := ev.(type) {
	case *event.Register:
		a.registered(e)
	case *event.CallAttempt:
		a.verdict(e.Source.Addr(), &e.SIP, e.Account, e.Destination, v)
	}
}

// verdict alerts a call refused by call policy or the anomaly model, and
// a call policy spend limit reached (warn or enforce).
func (a *alerter) verdict(src netip.Addr, s *event.SIP, account, dest string, v engine.Verdict) {
	if v.Rule != callpolicy.Name && v.Rule != anomaly.Name {
		return
	}
	ua := ""
	if s != nil {
		ua = s.UserAgent
	}
	rule := v.Rule
	if v.Policy != "" {
		rule += "/" + v.Policy
	}
	if v.Action == engine.Reject || v.Action == engine.Drop {
		a.notify(alert.Alert{Kind: alert.KindBlockedCall, Addr: src, Account: account, Destination: dest,
			UserAgent: ua, Rule: rule, Reason: v.Reason})
	}
	if amt, limit, ok := spendOver(v.Reason); ok {
		al := alert.Alert{Kind: alert.KindSpend, Addr: src, Account: account, Destination: dest, Rule: rule,
			Reason: v.Reason, Amount: amt, Threshold: limit}
		if _, cur, ok := strings.Cut(v.Loss, " "); ok {
			al.Currency = cur
		}
		if v.Mode == "warn" {
			al.Severity = alert.Warning
		}
		a.notify(al)
	}
}

// spendOver reads call policy's "spend_per_hour X reached Y" reason.
func spendOver(reason string) (amount, limit float64, ok bool) {
	_, rest, found := strings.Cut(reason, "spend_per_hour ")
	if !found {
		return 0, 0, false
	}
	f := strings.Fields(rest)
	if len(f) < 3 || f[1] != "reached" {
		return 0, 0, false
	}
	x, err1 := strconv.ParseFloat(f[0], 64)
	y, err2 := strconv.ParseFloat(f[2], 64)
	return x, y, err1 == nil && err2 == nil
}

// lockdown alerts lockdown turned on or off by actor.
func (a *alerter) lockdown(on bool, actor string) {
	a.notify(alert.Alert{Kind: alert.KindLockdown, On: on, Reason: "by " + actor})
}

// commit is the store writer's OnCommit: the first failed write after a
// good one is a store_down alert, the first good write after that its end.
func (a *alerter) commit(err error) {
	switch {
	case err != nil && a.storeDown.CompareAndSwap(false, true):
		a.notify(alert.Alert{Kind: alert.KindStoreDown, Target: "store", Reason: capN(err.Error(), 200)})
	case err == nil && a.storeDown.CompareAndSwap(true, false):
		a.notify(alert.Alert{Kind: alert.KindStoreDown, Target: "store", Resolved: true})
	}
}

// watch polls the proxy's upstream health and the Event Socket connection
// once per a.every and alerts each change. The Event Socket counts as down
// after two polls without a connection, so a connect still in progress at
// start is not an outage.
func (a *alerter) watch(ctx context.Context) {
	t := time.NewTicker(a.every)
	defer t.Stop()
	up := map[string]bool{}
	eslUp, eslMisses := true, 0
	clusterUp, clusterMisses := true, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.g.proxy != nil {
			for _, u := range a.g.proxy.Upstreams() {
				was, seen := up[u.Route]
				up[u.Route] = u.Up
				if seen && was == u.Up || !seen && u.Up {
					continue
				}
				a.notify(alert.Alert{Kind: alert.KindUpstreamDown, Target: u.URL, Reason: "route " + u.Route, Resolved: u.Up})
			}
		}
		if a.g.esl != nil {
			conn := a.g.esl.Connected()
			switch {
			case conn && !eslUp:
				eslUp, eslMisses = true, 0
				a.notify(alert.Alert{Kind: alert.KindESLDown, Target: a.g.config().FreeSWITCH.ESL, Resolved: true})
			case conn:
				eslMisses = 0
			case eslUp:
				if eslMisses++; eslMisses >= 2 {
					eslUp = false
					a.notify(alert.Alert{Kind: alert.KindESLDown, Target: a.g.config().FreeSWITCH.ESL})
				}
			}
		}
		if a.g.shr.node != nil {
			st := a.g.shr.node.Status()
			switch {
			case st.Connected && !clusterUp:
				clusterUp, clusterMisses = true, 0
				a.notify(alert.Alert{Kind: alert.KindClusterDown, Target: "node " + st.Node, Resolved: true})
			case st.Connected:
				clusterMisses = 0
			case clusterUp:
				if clusterMisses++; clusterMisses >= 2 {
					clusterUp = false
					a.notify(alert.Alert{Kind: alert.KindClusterDown, Target: "node " + st.Node, Reason: capN(st.LastError, 200)})
				}
			}
		}
	}
}

// capN caps s to n bytes for an event or an alert.
func capN(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
