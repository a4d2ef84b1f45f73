package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/freeswitch"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
)

// sidecarConfig is a daemon beside FreeSWITCH: no inline listener, the
// Event Socket at srv (when not nil) with the password in a 0600 file.
func sidecarConfig(t testing.TB, srv *esltest.Server) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.SIP.Listen = []string{}
	cfg.Admin.Listen = "127.0.0.1:0"
	if srv != nil {
		cfg.FreeSWITCH.ESL = srv.Addr()
		cfg.FreeSWITCH.PasswordFile = filepath.Join(dir, "esl.secret")
		if err := os.WriteFile(cfg.FreeSWITCH.PasswordFile, []byte("ClueCon\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// startDaemon builds and runs a daemon on cfg until the test ends.
func startDaemon(t *testing.T, cfg *config.Config, log *slog.Logger) *Guard {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(t.Context())
	g, err := New(ctx, cfg, Options{Logger: log, SourceBackoff: 20 * time.Millisecond})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon stopped with %v", err)
		}
	})
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	return g
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric returns the value of the counter or gauge name with labels (0
// when absent).
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// recording collects the decisions an engine makes.
type recording struct {
	mu sync.Mutex
	ds []decision.Decision
}

func (r *recording) Apply(d decision.Decision) {
	r.mu.Lock()
	r.ds = append(r.ds, d)
	r.mu.Unlock()
}

// sameDecision compares what an operator sees of two decisions.
func sameDecision(a, b decision.Decision) bool {
	return a.Type == b.Type && a.Scope == b.Scope && a.Prefix == b.Prefix && a.Account == b.Account &&
		a.Rule == b.Rule && a.Unproven == b.Unproven && a.Until.Sub(a.At) == b.Until.Sub(b.At)
}

// In sidecar mode (no inline listener) the daemon bans from FreeSWITCH's
// register_failure events exactly as the inline proxy bans from the 403s
// it forwards: the same decision (rule, scope, account, duration) as a
// replay of the equivalent inline responses through a fresh engine.
func TestSidecarESLBansAsInline(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	cfg := sidecarConfig(t, srv)
	g := startDaemon(t, cfg, nil)
	sc := <-srv.Subscribed

	attacker := netip.MustParseAddr("198.51.100.7")
	start := time.Now()
	var inline []event.Event
	for i := range 3 {
		at := start.Add(time.Duration(i) * time.Second)
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterAttempt("1001", "1001", "198.51.100.7", "5060", "friendly-scanner", "FORBIDDEN"), at)))
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "friendly-scanner", "REGISTER"), at)))
		// What the inline proxy taps for the same attempt over UDP: the
		// PBX's 403 to a REGISTER that carried credentials. (FreeSWITCH's
		// event names no transport, which counts as UDP: unproven.)
		inline = append(inline, &event.Response{Meta: event.Meta{Time: at, Source: netip.AddrPortFrom(attacker, 5060), Transport: "udp"},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1001", FromUser: "1001", AuthUser: "1001", HasCredentials: true, UserAgent: "friendly-scanner"}, Code: 403})
	}
	var got decision.Decision
	waitFor(t, "the sidecar ban", func() bool {
		bans := g.Set().List(time.Now())
		if len(bans) == 1 {
			got = bans[0]
		}
		return len(bans) == 1
	})

	rec := &recording{}
	set := decision.NewSet()
	eng, err := engine.New(cfg, engine.Options{Set: set, Lists: decision.NewLists(nil, nil), Apply: decision.Fanout{set, rec},
		Now: func() time.Time { return start }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range inline {
		eng.Check(t.Context(), ev)
		eng.Check(t.Context(), event.Classify(ev.(*event.Response)))
	}
	if len(rec.ds) != 1 {
		t.Fatalf("inline replay made %v, want one ban", rec.ds)
	}
	want := rec.ds[0]
	if !sameDecision(got, want) || got.Rule != "register_failure[0]" || got.Account != "1001" || got.Prefix.Addr() != attacker {
		t.Fatalf("sidecar decision %+v\ninline decision  %+v", got, want)
	}
	// The ban is in the store too, as the inline path writes it.
	waitFor(t, "the stored ban", func() bool {
		bans, err := g.st.ActiveBans(t.Context(), time.Now())
		return err == nil && len(bans) == 1 && sameDecision(bans[0], want)
	})
}

// Forged values cannot aim a ban: a header smuggled inside a percent-encoded
// value stays in that value, and the PBX's own address (the Event Socket's
// host) and allow-listed addresses are never banned.
func TestSidecarForgedAndTrusted(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	cfg := sidecarConfig(t, srv)
	cfg.Allow = []config.Prefix{config.Prefix(netip.MustParsePrefix("203.0.113.0/24"))}
	cfg.Jail.RegisterFailure[0].BanMode = "ip"
	g := startDaemon(t, cfg, nil)
	sc := <-srv.Subscribed

	now := time.Now()
	for _, ip := range []string{"127.0.0.1", "203.0.113.5"} { // the PBX (ESL host), allow
		for range 4 {
			sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1001", ip, "5060", "x", "REGISTER"), now)))
		}
	}
	for range 4 { // a newline inside the address itself: no source, no ban
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1003", "192.0.2.98\nnetwork-ip: 192.0.2.97", "5060", "x", "REGISTER"), now)))
	}
	smuggled := "evil\nnetwork-ip: 192.0.2.99\n\nContent-Length: 0\n\n"
	for range 4 {
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1002", "198.51.100.8", "5060", smuggled, "REGISTER"), now)))
	}
	waitFor(t, "the real source's ban", func() bool {
		_, ok := g.Set().Banned(netip.MustParseAddr("198.51.100.8"), time.Now())
		return ok
	})
	for _, ip := range []string{"127.0.0.1", "203.0.113.5", "192.0.2.99", "192.0.2.98", "192.0.2.97"} {
		if d, ok := g.Set().Banned(netip.MustParseAddr(ip), time.Now()); ok {
			t.Errorf("%s banned: %v", ip, d)
		}
	}
	if n := len(g.Set().List(time.Now())); n != 1 {
		t.Errorf("%d bans, want only the real source's", n)
	}
}

// A kill reaches FreeSWITCH as uuid_kill on the daemon's Event Socket, and
// a call the engine refuses (from a banned address) is killed as soon as
// its CHANNEL_CREATE arrives.
func TestSidecarKill(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	cfg := sidecarConfig(t, srv)
	g := startDaemon(t, cfg, nil)
	sc := <-srv.Subscribed
	waitFor(t, "the connection", func() bool {
		return metric(t, g.Registry(), "tollguard_esl_connected", nil) == 1
	})

	const call = "37e9b766-5256-4e4b-b1ed-3767b930fec8"
	srv.AddChannel(call)
	if n, err := Kill(t.Context(), g.Teardown(), KillScope{CallID: call}); err != nil || n != 1 {
		t.Fatalf("Kill = %d, %v", n, err)
	}
	if !slices.Contains(srv.Commands(), "api uuid_kill "+call) {
		t.Fatalf("commands %q lack the uuid_kill", srv.Commands())
	}
	if _, err := Kill(t.Context(), g.Teardown(), KillScope{CallID: call}); err == nil {
		t.Error("killing a call that is gone succeeded")
	}
	if _, err := Kill(t.Context(), g.Teardown(), KillScope{Addr: netip.MustParseAddr("198.51.100.9")}); err != nil {
		t.Errorf("kill by address: %v", err)
	}
	if !slices.Contains(srv.Commands(), "api hupall NORMAL_CLEARING sip_network_ip 198.51.100.9") {
		t.Errorf("commands %q lack the hupall", srv.Commands())
	}
	for _, bad := range []KillScope{{}, {CallID: call, Account: "1001"}} {
		if _, err := Kill(t.Context(), g.Teardown(), bad); err == nil {
			t.Errorf("Kill(%+v) accepted", bad)
		}
	}

	banned := netip.MustParseAddr("198.51.100.10")
	if _, err := (banService{g}).Ban(t.Context(), api.BanRequest{IP: banned, For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	const refused = "0d4d8d1c-5a36-4e0c-a9a3-3c6ad0b1e0a1"
	srv.AddChannel(refused)
	sc.Write(esltest.FrameEvent(esltest.At(esltest.ChannelEventFrom("CHANNEL_CREATE", refused, banned.String(), "1003", "0046701234567", "inbound", "x"), time.Now())))
	waitFor(t, "uuid_kill of the refused call", func() bool { return slices.Contains(srv.Commands(), "api uuid_kill "+refused) })
}

// A wrong password is retried with backoff, said once in the log and in
// the metrics, and never stops the daemon; a password file others can
// read refuses the start.
func TestSidecarBadPassword(t *testing.T) {
	srv := esltest.New(t, "other")
	cfg := sidecarConfig(t, srv)
	var buf syncBuffer
	g := startDaemon(t, cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	waitFor(t, "three retries", func() bool {
		return metric(t, g.Registry(), "tollguard_source_restarts_total", map[string]string{"source": "esl"}) >= 3
	})
	if n := strings.Count(buf.String(), freeswitch.ErrAuth.Error()); n != 1 {
		t.Errorf("the refused password is logged %d times, want once:\n%s", n, buf.String())
	}
	if metric(t, g.Registry(), "tollguard_esl_connected", nil) != 0 {
		t.Error("connected with a wrong password")
	}

	if err := os.Chmod(cfg.FreeSWITCH.PasswordFile, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	_, err := New(t.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+cfg.FreeSWITCH.PasswordFile) {
		t.Fatalf("start with a 0644 password file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := eslPassword(config.FreeSWITCH{PasswordFile: empty}); err == nil {
		t.Error("an empty password file was accepted")
	}
	if _, err := eslPassword(config.FreeSWITCH{PasswordFile: empty + ".missing"}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing password file: %v", err)
	}
}

// A daemon following FreeSWITCH's log (no Event Socket) bans after the
// failures, across a logrotate (rename and a new file) in the middle, and
// never bans an allow-listed address or the PBX's own.
func TestSidecarLogSourceAcrossRotation(t *testing.T) {
	cfg := sidecarConfig(t, nil)
	logPath := filepath.Join(t.TempDir(), "freeswitch.log")
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Sources = []config.LogSource{{Type: "freeswitch_log", Path: logPath}}
	cfg.Allow = []config.Prefix{config.Prefix(netip.MustParsePrefix("203.0.113.0/24"))}
	g := startDaemon(t, cfg, nil)

	appendLine := func(line string) {
		t.Helper()
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		stamp := time.Now().Format("2006-01-02 15:04:05.000000")
		if _, err := fmt.Fprintf(f, "%s 97.13%% %s\n", stamp, line); err != nil {
			t.Fatal(err)
		}
	}
	lines := func() float64 {
		return metric(t, g.Registry(), "tollguard_logsource_lines_total", map[string]string{"type": "freeswitch_log"})
	}
	// The follower starts at the file's end: write until it reads.
	waitFor(t, "the follower", func() bool {
		appendLine("[NOTICE] switch_core.c:2490 FreeSWITCH Started")
		time.Sleep(20 * time.Millisecond)
		return lines() > 0
	})
	failure := func(ip string) string {
		return "[WARNING] sofia_reg.c:2920 SIP auth failure (REGISTER) on sofia profile 'internal' for [1001@203.0.113.10] from ip " + ip
	}
	appendLine(failure("198.51.100.20"))
	appendLine(failure("203.0.113.9")) // allow-listed: never banned
	appendLine(failure("198.51.100.20"))
	waitFor(t, "the first failures", func() bool { return metric(t, g.Registry(), "tollguard_logsource_events_total", nil) >= 3 })
	if bans := g.Set().List(time.Now()); len(bans) != 0 {
		t.Fatalf("banned after two failures: %v", bans)
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	appendLine(failure("198.51.100.20"))
	appendLine(failure("203.0.113.9"))
	appendLine(failure("203.0.113.9"))
	for range 3 { // the PBX itself (sip.upstream's host): never banned
		appendLine(failure("127.0.0.1"))
	}
	waitFor(t, "the ban after the rotation", func() bool { return len(g.Set().List(time.Now())) > 0 })
	waitFor(t, "every line", func() bool { return metric(t, g.Registry(), "tollguard_logsource_events_total", nil) >= 9 })
	if r := metric(t, g.Registry(), "tollguard_logsource_reopens_total", map[string]string{"reason": "rotated"}); r != 1 {
		t.Errorf("reopens{rotated} = %v, want 1", r)
	}
	bans := g.Set().List(time.Now())
	if len(bans) != 1 || bans[0].Account != "1001" || bans[0].Prefix.Addr() != netip.MustParseAddr("198.51.100.20") || bans[0].Rule != "register_failure[0]" {
		t.Errorf("bans %v, want 1001@198.51.100.20 only", bans)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
