package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/daemon"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/enforce/alert"
	"github.com/tollguard/tollguard/internal/sim"
)

// banBridge is a slog.Handler that turns the daemon's "ban" log records
// into alerts: the stand-in for the daemon's own alert wiring (tested in
// internal/daemon), so this test owns the Notifier's clock.
type banBridge struct {
	n     *alert.Notifier
	bans  *atomic.Int64
	attrs []slog.Attr
}

func (b *banBridge) Enabled(context.Context, slog.Level) bool { return true }
func (b *banBridge) WithAttrs(as []slog.Attr) slog.Handler {
	return &banBridge{n: b.n, bans: b.bans, attrs: append(append([]slog.Attr(nil), b.attrs...), as...)}
}
func (b *banBridge) WithGroup(string) slog.Handler { return b }
func (b *banBridge) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "ban" {
		return nil
	}
	a := alert.Alert{Kind: alert.KindBan, Time: r.Time}
	r.Attrs(func(at slog.Attr) bool {
		switch at.Key {
		case "target":
			s := at.Value.String()
			if u, err := strconv.Unquote(s); err == nil {
				s = u
			}
			a.Addr, _ = netip.ParseAddr(s)
		case "rule":
			a.Rule = at.Value.String()
		}
		return true
	})
	if a.Addr.IsValid() {
		b.bans.Add(1)
		b.n.Notify(a)
	}
	return nil
}

// A 1,000-source sweep attack from the simulator against the real guard
// ends up as one message at once and one summary with the count.
func TestSimulatedAttackIsTwoMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 1,000 simulated sweepers")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var mu sync.Mutex
	var got []alert.WebhookPayload
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p alert.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("bad payload %s", body)
		}
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
	}))
	defer hook.Close()
	messages := func() []alert.WebhookPayload {
		mu.Lock()
		defer mu.Unlock()
		return append([]alert.WebhookPayload(nil), got...)
	}

	var clockMu sync.Mutex
	now := time.Now()
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	cfg := config.Default()
	cfg.Alerts.Channels = []config.AlertChannel{{Name: "hook", Type: "webhook", URL: hook.URL}}
	n, err := alert.New(cfg.Alerts, alert.Options{Now: clock, Tick: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	nctx, ncancel := context.WithCancel(ctx)
	ndone := make(chan error, 1)
	go func() { ndone <- n.Run(nctx) }()
	defer func() { ncancel(); <-ndone }()

	p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	<-p.Ready()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = p.Target()
	cfg.Admin.Listen = "127.0.0.1:0"
	// The subject is the alerting of many bans: the sweepers do not
	// retransmit, so greylisting would hold them and nothing would be
	// banned.
	cfg.Greylist.Enabled = false
	var bans atomic.Int64
	gcfg := *cfg
	gcfg.Alerts.Channels = nil // the bridge above alerts, not the daemon's own Notifier
	g, err := daemon.New(ctx, &gcfg, daemon.Options{Logger: slog.New(&banBridge{n: n, bans: &bans})})
	if err != nil {
		t.Fatal(err)
	}
	gdone := make(chan error, 1)
	go func() { gdone <- g.Run(ctx) }()
	defer func() { cancel(); <-gdone }()
	select {
	case <-g.Ready():
	case err := <-gdone:
		t.Fatal(err)
	}
	var target netip.AddrPort
	for _, a := range g.SIPAddrs() {
		target = a.(*net.UDPAddr).AddrPort()
	}

	const sources = 1000
	var eg errgroup.Group
	eg.SetLimit(200)
	for i := range sources {
		src := netip.AddrFrom4([4]byte{127, 1, byte(i / 250), byte(1 + i%250)})
		eg.Go(func() error {
			// An extension sweep (svwar with a phone's User-Agent; 12 users, so a
			// datagram lost under load does not spare the sweeper): the
			// 8th user named without credentials bans the source. A
			// scanner's fingerprint alone would not: one UDP datagram
			// proves nothing about its source.
			_, err := sim.Enumerator{Attack: sim.Attack{Target: target, Source: src, Timeout: time.Second, Silence: 3},
				Extensions: sim.Extensions(100, 111), UserAgent: "Yealink SIP-T46S 66.85.0.5"}.Run(ctx)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for bans.Load() < sources && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if b := bans.Load(); b < sources {
		t.Fatalf("the guard banned %d of %d sweepers", b, sources)
	}
	for len(messages()) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	clockMu.Lock()
	now = now.Add(cfg.Alerts.GroupInterval.D() + time.Second)
	clockMu.Unlock()
	for len(messages()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	ms := messages()
	if len(ms) != 2 {
		t.Fatalf("%d messages for a %d-source attack, want 2: %+v", len(ms), sources, ms)
	}
	total := ms[0].Count + ms[1].Count
	if ms[0].Count != 1 || ms[1].Kind != alert.KindBan || int64(total) != bans.Load() || ms[1].Rules["enumeration"] != ms[1].Count {
		t.Errorf("messages: first count %d, summary count %d (%v), bans %d", ms[0].Count, ms[1].Count, ms[1].Rules, bans.Load())
	}
	t.Logf("%d bans → %d messages: %q / %q", bans.Load(), len(ms), ms[0].Title, ms[1].Title)
}
