package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/enforce/alert"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/store"
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
		Meta: event.Meta{Time: time.Now(), Source: netip.AddrPortFrom(caller, 5060), Transport: "tcp"},
		SIP:  event.SIP{Method: "INVITE", CallID: "c1@test", FromUser: "1001", AuthUser: "1001", HasCredentials: true, RURIUser: "0088612345678"},
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
	go sim.RegisterOnce(ctx, netip.MustParseAddr("127.0.0.6"), addr, p.Realm(), "1001", "Vx7#pR2qLm", nil)
	u := waitAlert(t, got, alert.KindUpstreamDown, nil)
	if u.Resolved || u.Target == "" {
		t.Errorf("upstream alert: %+v", u)
	}
}
