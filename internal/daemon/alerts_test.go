package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/enforce/alert"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// hook is a webhook receiver that hands every alert it gets to a channel.
func hook(t *testing.T) (*httptest.Server, chan alert.WebhookAlert) {
	got := make(chan alert.WebhookAlert, 10000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p alert.WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("webhook payload: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, a := range p.Alerts {
			select {
			case got <- a:
			default:
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// waitAlert returns the first alert of kind k that match accepts; other
// alerts are skipped.
func waitAlert(t *testing.T, got chan alert.WebhookAlert, k alert.Kind, match func(alert.WebhookAlert) bool) alert.WebhookAlert {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case a := <-got:
			if a.Kind == k && (match == nil || match(a)) {
				return a
			}
		case <-deadline:
			t.Fatalf("no %s alert reached the webhook", k)
		}
	}
}

// TestAlertsFromTheDaemon runs a guard in front of a PBX with a webhook
// channel and a dead one: a ban through the engine, a lockdown, a call
// refused by lockdown and the PBX going silent each reach the webhook;
// every message sent is an event in the store; a dead channel flooded with
// alerts does not keep the guard from answering.
func TestAlertsFromTheDaemon(t *testing.T) {
	ctx := t.Context()
	pctx, stopPBX := context.WithCancel(ctx)
	defer stopPBX()
	p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(pctx)
	<-p.Ready()

	srv, got := hook(t)
	hang := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(hang)

	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.SIP.UpstreamTimeout = config.Duration(300 * time.Millisecond)
	cfg.Admin.Listen = "127.0.0.1:0"
	// The subject is the alert of a ban: the attackers do not retransmit,
	// so greylisting would hold them and nothing would be banned.
	cfg.Greylist.Enabled = false
	cfg.Jail.RegisterFailure[0].BanMode = "ip"
	cfg.Alerts.Channels = []config.AlertChannel{
		{Name: "hook", Type: "webhook", URL: srv.URL},
		{Name: "dead", Type: "webhook", URL: dead.URL},
	}
	cfg.Alerts.Retries = 0

	gctx, cancel := context.WithCancel(ctx)
	g, err := New(gctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(gctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	var addr netip.AddrPort
	for _, v := range g.SIPAddrs() {
		addr = v.(*net.UDPAddr).AddrPort()
	}

	// A ban through the engine.
	attacker := netip.MustParseAddr("127.0.0.77")
	r, err := sim.Cracker{Attack: sim.Attack{Target: addr, Source: attacker, Timeout: 300 * time.Millisecond},
		Account: "1001", Domain: p.Realm(), Passwords: []string{"a1", "b2", "c3", "d4", "e5", "f6"}}.Run(ctx)
	if err != nil || !r.Banned {
		t.Fatalf("cracker: %v %v; want banned", r, err)
	}
	waitAlert(t, got, alert.KindBan, func(a alert.WebhookAlert) bool { return a.Addr == attacker.String() })

	// Lockdown, and a call it refuses.
	if _, err := (policyService{g.pol}).SetLockdown(ctx, true, false, "test"); err != nil {
		t.Fatal(err)
	}
	waitAlert(t, got, alert.KindLockdown, nil)
	caller := netip.MustParseAddr("127.0.0.9")
	v := g.check.Check(ctx, &event.CallAttempt{
		Meta:    event.Meta{Time: time.Now(), Source: netip.AddrPortFrom(caller, 5060), Transport: "tcp"},
		SIP:     event.SIP{Method: "INVITE", CallID: "c1@test", FromUser: "1001", AuthUser: "1001", HasCredentials: true, RURIUser: "0088612345678"},
		Account: "1001", Destination: "0088612345678"})
	if v.Action != engine.Reject {
		t.Fatalf("call under lockdown: %+v; want reject", v)
	}
	b := waitAlert(t, got, alert.KindBlockedCall, nil)
	if b.Addr != caller.String() || b.Account != "1001" {
		t.Errorf("blocked call alert: %+v", b)
	}
	if _, err := (policyService{g.pol}).SetLockdown(ctx, false, false, "test"); err != nil {
		t.Fatal(err)
	}

	// A dead channel, its queue flooded: the guard still answers.
	for i := range 10000 {
		g.alerts.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP,
			Prefix: decision.HostPrefix(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})), Rule: "scanner", At: time.Now()})
	}
	if res, err := sim.RegisterOnce(ctx, netip.MustParseAddr("127.0.0.5"), addr, p.Realm(), "1001", "Vx7#pR2qLm", nil); err != nil || res.Code != 200 {
		t.Fatalf("register with a dead alert channel: %v %+v", err, res)
	}

	// Every message sent is an event in the store.
	var sent bool
	for deadline := time.Now().Add(20 * time.Second); !sent && time.Now().Before(deadline); {
		if err := g.st.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		recs, err := g.st.Query(ctx, store.Filter{Kinds: []event.Kind{event.KindAdmin}})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			a, ok := rec.Event.(*event.Admin)
			sent = sent || ok && a.Actor == "alert" && a.Action == "alert_sent" && a.Target == "hook"
		}
		if !sent {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !sent {
		t.Error("no alert_sent event in the store")
	}

	// The PBX goes silent: the upstream is down.
	stopPBX()
	// A phone keeps re-registering, as phones do: each REGISTER the PBX
	// leaves unanswered tells the guard the upstream is gone (on a loaded
	// machine one may not be enough before the deadline).
	phoneCtx, stopPhone := context.WithCancel(ctx)
	defer stopPhone()
	go func() {
		for phoneCtx.Err() == nil {
			_, _ = sim.RegisterOnce(phoneCtx, netip.MustParseAddr("127.0.0.6"), addr, p.Realm(), "1001", "Vx7#pR2qLm", nil)
			select {
			case <-phoneCtx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	u := waitAlert(t, got, alert.KindUpstreamDown, nil)
	stopPhone()
	if u.Resolved || u.Target == "" {
		t.Errorf("upstream alert: %+v", u)
	}
}

// newTestAlerter runs an alerter whose one channel is a local webhook,
// beside a store in a temporary directory.
func newTestAlerter(t *testing.T) (*alerter, chan alert.WebhookAlert, *config.Config) {
	t.Helper()
	srv, got := hook(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Alerts.Channels = []config.AlertChannel{{Name: "hook", Type: "webhook", URL: srv.URL}}
	cfg.Alerts.GroupInterval = config.Duration(100 * time.Millisecond)
	g := &Guard{log: slog.New(slog.DiscardHandler), now: time.Now, reg: prometheus.NewRegistry()}
	g.cfg.Store(cfg)
	st, err := store.Open(t.Context(), cfg.Store, cfg.DataDir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.st = st
	a, err := newAlerter(g, cfg.Alerts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { a.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return a, got, cfg
}

func register(src, account string) *event.Register {
	return &event.Register{Meta: event.Meta{Time: time.Now(), Source: netip.MustParseAddrPort(src)},
		SIP: event.SIP{Method: "REGISTER", UserAgent: "Z 5.6"}, Account: account}
}

// TestAlerterHooks feeds decisions, events, verdicts and store outcomes
// to the alerter and checks what reaches the webhook. Cases that must not
// alert come first: the first alert of a kind is sent at once, so a wrong
// one would be the one seen.
func TestAlerterHooks(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name  string
		feed  func(a *alerter)
		kind  alert.Kind
		check func(t *testing.T, got alert.WebhookAlert)
	}{
		{"account lock is a compromised account", func(a *alerter) {
			a.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1001", Rule: "distributed",
				Reason: "40 failures from 30 addresses", At: now, Until: now.Add(time.Hour)})
		}, alert.KindCompromised, func(t *testing.T, got alert.WebhookAlert) {
			if got.Account != "1001" || got.Rule != "distributed" || got.Addr != "" {
				t.Errorf("got %+v", got)
			}
		}},
		{"registration from an address banned for failures on the account", func(a *alerter) {
			a.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(netip.MustParseAddr("203.0.113.5")),
				Account: "1001", Rule: "register_failure[0]", At: now, Until: now.Add(time.Minute)})
			a.observe(register("203.0.113.6:5060", "1001"), engine.Verdict{}) // another address
			a.observe(register("203.0.113.5:5060", "1002"), engine.Verdict{}) // another account
			a.observe(register("203.0.113.5:5060", "1001"), engine.Verdict{})
		}, alert.KindCompromised, func(t *testing.T, got alert.WebhookAlert) {
			if got.Addr != "203.0.113.5" || got.Account != "1001" || got.Rule != "register_after_ban" {
				t.Errorf("got %+v", got)
			}
		}},
		{"a ban is a ban alert with its length", func(a *alerter) {
			a.Apply(decision.Decision{Type: decision.TypeUnban, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(netip.MustParseAddr("192.0.2.1"))})
			a.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(netip.MustParseAddr("192.0.2.2")),
				Rule: "scanner", At: now, Until: now.Add(10 * time.Minute)})
		}, alert.KindBan, func(t *testing.T, got alert.WebhookAlert) {
			if got.Addr != "192.0.2.2" || got.BanSeconds != 600 {
				t.Errorf("got %+v", got)
			}
		}},
		{"spend over the hourly limit", func(a *alerter) {
			a.observe(&event.CallAttempt{Meta: event.Meta{Source: netip.MustParseAddrPort("192.0.2.9:5060")}, Account: "1001", Destination: "0088612345678"},
				engine.Verdict{Action: engine.Reject, Code: 403, Rule: "call_policy", Policy: "intl", Mode: "enforce",
					Reason: "intl: spend_per_hour 12.50 reached 10.00", Loss: "1.20 CNY"})
		}, alert.KindSpend, func(t *testing.T, got alert.WebhookAlert) {
			if got.Amount != 12.5 || got.Threshold != 10 || got.Currency != "CNY" || got.Rule != "call_policy/intl" || got.Severity != "critical" {
				t.Errorf("got %+v", got)
			}
		}},
		{"only call policy and anomaly refusals are blocked calls", func(a *alerter) {
			a.observe(&event.CallAttempt{Meta: event.Meta{Source: netip.MustParseAddrPort("192.0.2.10:5060")}, Account: "1001"},
				engine.Verdict{Action: engine.Reject, Code: 403, Rule: "register_failure[0]"})
			a.observe(&event.CallAttempt{Meta: event.Meta{Source: netip.MustParseAddrPort("192.0.2.11:5060")}, Account: "1001"},
				engine.Verdict{Action: engine.Pass, Rule: "anomaly", Mode: "warn"})
			a.observe(&event.CallAttempt{Meta: event.Meta{Source: netip.MustParseAddrPort("192.0.2.12:5060")}, Account: "1001", Destination: "0088612345678"},
				engine.Verdict{Action: engine.Drop, Rule: "anomaly", Reason: "unusual destination"})
		}, alert.KindBlockedCall, func(t *testing.T, got alert.WebhookAlert) {
			if got.Addr != "192.0.2.12" || got.Rule != "anomaly" {
				t.Errorf("got %+v", got)
			}
		}},
		{"store down once, then back", func(a *alerter) {
			a.commit(nil)
			a.commit(errors.New("disk full"))
			a.commit(errors.New("disk full"))
			a.commit(nil)
		}, alert.KindStoreDown, func(t *testing.T, got alert.WebhookAlert) {
			if got.Resolved || got.Target != "store" {
				t.Errorf("first store alert %+v; want the outage", got)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, got, _ := newTestAlerter(t)
			tc.feed(a)
			tc.check(t, waitAlert(t, got, tc.kind, nil))
		})
	}
}

// TestAlerterStoreBack checks the end of a store outage is told too.
func TestAlerterStoreBack(t *testing.T) {
	a, got, _ := newTestAlerter(t)
	a.commit(errors.New("disk full"))
	waitAlert(t, got, alert.KindStoreDown, func(w alert.WebhookAlert) bool { return !w.Resolved })
	a.commit(nil)
	waitAlert(t, got, alert.KindStoreDown, func(w alert.WebhookAlert) bool { return w.Resolved })
}

// TestAlerterReload checks a reload that changes alerts: builds a new
// Notifier whose channels receive alerts and show in the metrics, one
// that does not change them keeps the Notifier, and one that cannot be
// built is refused.
func TestAlerterReload(t *testing.T) {
	a, _, cfg := newTestAlerter(t)
	old := a.cur.Load()
	same := *cfg
	if changed, err := a.prepare(&same); changed || err != nil {
		t.Fatalf("prepare(unchanged) = %v, %v", changed, err)
	}
	bad := *cfg
	bad.Alerts.Channels = []config.AlertChannel{{Name: "mail", Type: "email", SMTP: config.SMTP{Addr: "127.0.0.1:25",
		From: "a@example.com", To: []string{"b@example.com"}, CAFile: filepath.Join(t.TempDir(), "missing.pem")}}}
	if _, err := a.prepare(&bad); err == nil {
		t.Fatal("prepare accepted an unreadable ca_file")
	}
	srv, got := hook(t)
	next := *cfg
	next.Alerts.Channels = []config.AlertChannel{{Name: "second", Type: "webhook", URL: srv.URL}}
	changed, err := a.prepare(&next)
	if !changed || err != nil {
		t.Fatalf("prepare(changed) = %v, %v", changed, err)
	}
	a.reload(&next)
	if a.cur.Load() == old {
		t.Fatal("notifier not rebuilt")
	}
	a.lockdown(true, "test")
	waitAlert(t, got, alert.KindLockdown, nil)
	mfs, err := a.g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var second bool
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				second = second || mf.GetName() == "tollguard_alert_sent_total" && l.GetValue() == "second"
			}
		}
	}
	if !second {
		t.Error("tollguard_alert_sent_total has no series for the reloaded channel")
	}
}

// TestAlertESLDown runs a daemon beside a FreeSWITCH that refuses its
// password: the Event Socket never comes up, and the people on duty hear
// of it.
func TestAlertESLDown(t *testing.T) {
	srv := esltest.New(t, "other")
	hk, got := hook(t)
	cfg := sidecarConfig(t, srv)
	cfg.Alerts.Channels = []config.AlertChannel{{Name: "hook", Type: "webhook", URL: hk.URL}}
	startDaemon(t, cfg, nil)
	a := waitAlert(t, got, alert.KindESLDown, nil)
	if a.Resolved || a.Target != srv.Addr() {
		t.Errorf("esl alert %+v; want the outage of %s", a, srv.Addr())
	}
}

// TestAlertClusterDown: a node of a cluster whose Redis dies says so
// (cluster_down, with the error) and says so again when it is back.
func TestAlertClusterDown(t *testing.T) {
	r := testpeer.StartRedis(t)
	hk, got := hook(t)
	n := startNode(t, "a", r.URL(), "udp://127.0.0.1:9", func(c *config.Config) {
		c.Alerts.Channels = []config.AlertChannel{{Name: "hook", Type: "webhook", URL: hk.URL}}
		c.Alerts.GroupInterval = config.Duration(100 * time.Millisecond)
	})
	waitConnected(t, n)
	r.Stop()
	a := waitAlert(t, got, alert.KindClusterDown, nil)
	if a.Resolved || a.Target != "node a" || a.Reason == "" {
		t.Errorf("cluster alert %+v; want the outage of node a with its error", a)
	}
	r.Start()
	if a := waitAlert(t, got, alert.KindClusterDown, func(a alert.WebhookAlert) bool { return a.Resolved }); a.Target != "node a" {
		t.Errorf("resolved cluster alert %+v", a)
	}
}
