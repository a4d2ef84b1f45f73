package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/config"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// eventually polls cond until it holds; the generous deadline only stops a
// broken test from hanging, it measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// start runs n until the test ends.
func start(t *testing.T, n *Notifier) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

type reports struct {
	mu sync.Mutex
	rs []Report
}

func (r *reports) add(x Report) { r.mu.Lock(); r.rs = append(r.rs, x); r.mu.Unlock() }
func (r *reports) get() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Report(nil), r.rs...)
}

func webhookAlerts(url string) config.Alerts {
	cfg := config.Default().Alerts
	cfg.Channels = []config.AlertChannel{{Name: "hook", Type: "webhook", URL: url}}
	return cfg
}

// A 1,000-address attack is one message at once, then one summary with
// the count: never a thousand messages.
func TestNotifierBurstOfBans(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 200, "" })
	clk := &clock{t: fixed}
	var reps reports
	reg := prometheus.NewRegistry()
	n, err := New(webhookAlerts(rec.srv.URL), Options{Now: clk.now, Tick: time.Millisecond, Registry: reg, OnReport: reps.add, Node: "edge-1"})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	for i := range 1000 {
		n.Notify(banFrom(i))
	}
	eventually(t, "the first message and 999 alerts held", func() bool {
		return len(rec.got()) == 1 && testutil.ToFloat64(n.m.suppressed[0]) == 999
	})
	clk.add(61 * time.Second)
	eventually(t, "the summary", func() bool { return len(rec.got()) == 2 })
	clk.add(5 * time.Minute)
	n.Notify(Alert{Kind: KindLockdown, On: true})
	eventually(t, "the lockdown message", func() bool { return len(rec.got()) == 3 })
	// The receiver has the message before the sender has read the answer
	// and counted it: wait for the count and the report too.
	eventually(t, "the third send counted and reported", func() bool {
		return testutil.ToFloat64(n.m.sent[0]) == 3 && len(reps.get()) == 3
	})

	var counts []int
	var kinds []Kind
	for _, r := range rec.got() {
		var p WebhookPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		counts, kinds = append(counts, p.Count), append(kinds, p.Kind)
	}
	if counts[0] != 1 || counts[1] != 999 || counts[2] != 1 || kinds[1] != KindBan || kinds[2] != KindLockdown {
		t.Errorf("messages: counts %v kinds %v; want 1 ban, a summary of 999, the lockdown", counts, kinds)
	}
	if got := testutil.ToFloat64(n.m.sent[0]); got != 3 {
		t.Errorf("tollguard_alert_sent_total = %v, want 3", got)
	}
	rs := reps.get()
	if len(rs) != 3 || rs[1].Count != 999 || rs[1].Err != nil || rs[1].Attempts != 1 || rs[1].Channel != "hook" {
		t.Errorf("reports %+v", rs)
	}
	if c, err := testutil.GatherAndCount(reg, "tollguard_alert_sent_total", "tollguard_alert_failed_total", "tollguard_alert_dropped_total"); err != nil || c != 3 {
		t.Errorf("registered series: %d %v", c, err)
	}
}

func TestNotifierReportsFailure(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 403, "forbidden" })
	var reps reports
	n, err := New(webhookAlerts(rec.srv.URL), Options{OnReport: reps.add})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(Alert{Kind: KindCompromised, Account: "1001"})
	eventually(t, "a report", func() bool { return len(reps.get()) == 1 })
	r := reps.get()[0]
	if r.Err == nil || r.Attempts != 1 || r.Kind != KindCompromised || r.Severity != Critical || testutil.ToFloat64(n.m.failed[0]) != 1 {
		t.Errorf("report %+v", r)
	}
}

// Rules route by kind and severity; a channel named by two rules gets an
// alert once.
func TestNotifierRouting(t *testing.T) {
	cfg := config.Default().Alerts
	cfg.Channels = []config.AlertChannel{
		{Name: "ops", Type: "webhook", URL: "http://127.0.0.1:9/"},
		{Name: "boss", Type: "webhook", URL: "http://127.0.0.1:9/"},
	}
	cfg.Rules = []config.AlertRule{
		{Channels: []string{"ops"}, Kinds: []string{"ban", "compromised"}},
		{Channels: []string{"ops", "boss"}, MinSeverity: "critical"},
	}
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		a         Alert
		ops, boss int
	}{
		{Alert{Kind: KindBan}, 1, 0},
		{Alert{Kind: KindBan, Severity: Critical}, 1, 1},
		{Alert{Kind: KindBlockedCall}, 0, 0},
		{Alert{Kind: KindCompromised}, 1, 1},
		{Alert{Kind: KindUpstreamDown}, 1, 1},
		{Alert{Kind: KindUpstreamDown, Severity: Info}, 0, 0},
	} {
		before := [2]int{len(n.chans[0].queue), len(n.chans[1].queue)}
		n.Notify(tc.a)
		if d0, d1 := len(n.chans[0].queue)-before[0], len(n.chans[1].queue)-before[1]; d0 != tc.ops || d1 != tc.boss {
			t.Errorf("%s/%v: ops %d boss %d, want %d %d", tc.a.Kind, tc.a.Severity, d0, d1, tc.ops, tc.boss)
		}
	}
}

func TestNilNotifierIgnores(t *testing.T) {
	var n *Notifier
	n.Notify(Alert{Kind: KindBan}) // must not panic
}

// A full queue drops and counts instead of blocking.
func TestNotifierQueueFullDrops(t *testing.T) {
	cfg := webhookAlerts("http://127.0.0.1:9/")
	cfg.QueueSize = 4
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		n.Notify(banFrom(i)) // not running: nothing drains the queue
	}
	if got := testutil.ToFloat64(n.m.dropped[0]); got != 6 || len(n.chans[0].queue) != 4 {
		t.Errorf("dropped %v queued %d, want 6 and 4", got, len(n.chans[0].queue))
	}
}

// hanging is a receiver that accepts requests and never answers until the
// test ends.
func hanging(t testing.TB) string {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv.URL
}

// 10,000 Notify calls return while one channel hangs, and the healthy
// channel beside it still delivers.
func TestNotifierDeadChannel(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 200, "" })
	cfg := config.Default().Alerts
	cfg.QueueSize = 64
	cfg.Timeout = config.Duration(time.Hour)
	cfg.Channels = []config.AlertChannel{
		{Name: "dead", Type: "webhook", URL: hanging(t)},
		{Name: "alive", Type: "webhook", URL: rec.srv.URL},
	}
	n, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	for i := range 10000 {
		n.Notify(Alert{Kind: KindBan, Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})})
	}
	eventually(t, "the healthy channel's message", func() bool { return len(rec.got()) == 1 })
	if s := testutil.ToFloat64(n.m.sent[0]); s != 0 {
		t.Errorf("the dead channel sent %v", s)
	}
}

func BenchmarkNotifyDeadChannel(b *testing.B) {
	cfg := webhookAlerts(hanging(b))
	cfg.Timeout = config.Duration(time.Hour)
	n, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	a := Alert{Kind: KindBan, Addr: netip.MustParseAddr("203.0.113.9"), Rule: "scanner", Reason: "friendly-scanner"}
	b.ReportAllocs()
	for b.Loop() {
		n.Notify(a)
	}
}

// A failing delivery is logged without the channel's credentials.
func TestNotifierLogsNoSecrets(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 500, "down" })
	cfg := config.Default().Alerts
	cfg.Retries = 1
	cfg.Backoff = config.Duration(time.Millisecond)
	cfg.Channels = []config.AlertChannel{{Name: "ops", Type: "dingtalk", URL: rec.srv.URL + "/robot/send", AccessToken: "TOKEN-SECRET", Secret: "SEC-SECRET"}}
	var logs syncBuffer
	var reps reports
	n, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), OnReport: reps.add})
	if err != nil {
		t.Fatal(err)
	}
	start(t, n)
	n.Notify(Alert{Kind: KindBan, Addr: netip.MustParseAddr("203.0.113.5")})
	eventually(t, "the failure report", func() bool { return len(reps.get()) == 1 })
	out := logs.String()
	if !strings.Contains(out, "alert not delivered") || !strings.Contains(out, "status 500") || !strings.Contains(out, "attempts=2") {
		t.Errorf("log lacks the failure: %s", out)
	}
	for _, s := range []string{"TOKEN-SECRET", "SEC-SECRET", "sign="} {
		if strings.Contains(out, s) {
			t.Errorf("log carries %s: %s", s, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
