package cli

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeBans is an in-memory BanService on a fixed clock.
type fakeBans struct {
	mu       sync.Mutex
	set      *decision.Set
	failures []api.Failure
}

func (f *fakeBans) Summary(context.Context) (api.BanSummary, error) {
	return api.BanSummary{
		Now:      t0,
		Jail:     []api.JailRule{{Name: "register_failure[0]", FindTime: api.Duration(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: api.Duration(3 * time.Minute)}},
		Failures: f.failures,
		Bans:     f.set.List(t0),
	}, nil
}

func (f *fakeBans) Ban(_ context.Context, r api.BanRequest) (decision.Decision, error) {
	d := decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(r.IP),
		Origin: decision.OriginAdmin, Rule: "admin", Reason: r.Reason, At: t0, Until: t0.Add(r.For)}
	if r.Account != "" {
		d.Scope, d.Account = decision.ScopeIPAccount, r.Account
	}
	f.set.Add(d)
	return d, nil
}

func (f *fakeBans) Unban(_ context.Context, ip netip.Addr, account, _ string) ([]decision.Decision, error) {
	if account != "" {
		return f.set.Remove(decision.Key{Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(ip), Account: account}, false), nil
	}
	return f.set.Remove(decision.Key{Scope: decision.ScopeIP, Prefix: decision.HostPrefix(ip)}, true), nil
}

// daemon runs a real api.Server on 127.0.0.1:0 and writes a config file
// pointing at it, as `tollguard serve` would.
type daemon struct {
	cfg   string
	dir   string
	bans  *fakeBans
	mu    sync.Mutex
	audit []event.Admin
}

func startDaemon(t *testing.T, mount ...func(*api.Server)) *daemon {
	t.Helper()
	d := &daemon{dir: t.TempDir(), bans: &fakeBans{set: decision.NewSet()}}
	srv, err := api.New(api.Options{
		Listen: "127.0.0.1:0", DataDir: filepath.Join(d.dir, "data"), Bans: d.bans,
		Now: func() time.Time { return t0 },
		Audit: func(_ context.Context, a event.Admin) {
			d.mu.Lock()
			d.audit = append(d.audit, a)
			d.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mount {
		m(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	<-srv.Ready()
	d.cfg = filepath.Join(d.dir, "tollguard.yaml")
	yaml := "data_dir: " + filepath.Join(d.dir, "data") + "\nadmin:\n  listen: \"" + srv.Addr().String() + "\"\n"
	if err := os.WriteFile(d.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// cli runs one command line against the daemon and returns exit code,
// stdout and stderr.
func (d *daemon) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	e, out, errb := testEnv(t)
	code := run(context.Background(), e, args, nil)
	return code, out.String(), errb.String()
}

func TestBansEndToEnd(t *testing.T) {
	d := startDaemon(t)
	ip := netip.MustParseAddr("203.0.113.7")
	d.bans.failures = []api.Failure{
		{Time: t0.Add(-10 * time.Second), Address: ip, Account: "1001", Code: 403},
		{Time: t0.Add(-20 * time.Second), Address: ip, Account: "10\x1b[2J01", Code: 401},
	}
	d.bans.set.Add(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(ip),
		Account: "1001", Rule: "register_failure[0]", Reason: "3 failures in 1m0s", At: t0.Add(-30 * time.Second), Until: t0.Add(150 * time.Second)})

	code, out, errOut := d.cli(t, "bans", "-c", d.cfg)
	if code != 0 {
		t.Fatalf("bans: exit %d: %s", code, errOut)
	}
	want := `Jail (register_failure):
RULE                 FINDTIME  MAXRETRY  BANMODE     BANTIME
register_failure[0]  1m0s      3         ip_account  3m0s

Recent failures: 2
TIME                 ADDRESS      ACCOUNT        CODE
2026-03-01 11:59:50  203.0.113.7  1001           403
2026-03-01 11:59:40  203.0.113.7  "10\x1b[2J01"  401

Active bans: 1
TARGET            SCOPE       RULE                 SINCE                EXPIRES              LEFT   REASON
1001@203.0.113.7  ip_account  register_failure[0]  2026-03-01 11:59:30  2026-03-01 12:02:30  2m30s  3 failures in 1m0s
`
	if out != want {
		t.Errorf("bans printed:\n%s\nwant:\n%s", out, want)
	}

	// Flags after the command's positional-free args, and --json.
	code, out, _ = d.cli(t, "bans", "--json", "-c", d.cfg)
	var sum api.BanSummary
	if err := json.Unmarshal([]byte(out), &sum); code != 0 || err != nil {
		t.Fatalf("bans --json: exit %d, %v: %s", code, err, out)
	}
	if len(sum.Bans) != 1 || sum.Bans[0].Target() != "1001@203.0.113.7" || len(sum.Failures) != 2 || sum.Jail[0].MaxRetry != 3 {
		t.Errorf("bans --json = %+v", sum)
	}

	// ban, with flags after the IP.
	code, out, errOut = d.cli(t, "ban", "198.51.100.4", "--account", "1002", "--for", "2h", "--reason", "manual", "-c", d.cfg)
	if code != 0 || out != "banned 1002@198.51.100.4 (ip_account) until 2026-03-01 14:00:00 (2h0m)\n" {
		t.Errorf("ban: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = d.cli(t, "ban", "198.51.100.5", "--json", "-c", d.cfg)
	var rep api.BanReply
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Ban.Scope != decision.ScopeIP || !rep.Ban.Until.Equal(t0.Add(api.DefaultBanFor)) {
		t.Errorf("ban --json: exit %d, %v, %+v", code, err, rep)
	}

	// unban of one account, then of a whole address.
	code, out, _ = d.cli(t, "unban", "198.51.100.4", "1002", "-c", d.cfg)
	wantUnban := "lifted 1 ban:\n" +
		"TARGET             SCOPE       RULE   REASON\n" +
		"1002@198.51.100.4  ip_account  admin  manual\n"
	if code != 0 || out != wantUnban {
		t.Errorf("unban IP ACCOUNT: exit %d:\n%q\nwant\n%q", code, out, wantUnban)
	}
	code, out, _ = d.cli(t, "unban", "203.0.113.7", "--json", "-c", d.cfg)
	var lifted api.UnbanReply
	if err := json.Unmarshal([]byte(out), &lifted); code != 0 || err != nil || len(lifted.Lifted) != 1 || lifted.Lifted[0].Account != "1001" {
		t.Errorf("unban --json: exit %d, %v, %s", code, err, out)
	}
	code, _, errOut = d.cli(t, "unban", "203.0.113.7", "-c", d.cfg)
	if code != 1 || errOut != "tollguard unban: no ban in force on 203.0.113.7\n" {
		t.Errorf("unban of nothing: exit %d, stderr %q", code, errOut)
	}

	left := d.bans.set.List(t0)
	if len(left) != 1 || left[0].Target() != "198.51.100.5" {
		t.Errorf("bans left: %v", left)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var actions []string
	for _, a := range d.audit {
		actions = append(actions, a.Action+" "+a.Target)
		if a.Actor != "token@127.0.0.1" {
			t.Errorf("audit actor = %q", a.Actor)
		}
	}
	wantAudit := "ban 1002@198.51.100.4,ban 198.51.100.5,unban 1002@198.51.100.4,unban 203.0.113.7,unban 203.0.113.7"
	if strings.Join(actions, ",") != wantAudit {
		t.Errorf("audit = %v, want %s", actions, wantAudit)
	}
}

func TestClientCommandErrors(t *testing.T) {
	d := startDaemon(t)
	wrong := filepath.Join(d.dir, "wrong.token")
	if err := os.WriteFile(wrong, []byte(strings.Repeat("0", 64)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := d.cli(t, "bans", "-c", d.cfg, "--token-file", wrong)
	if code != 1 || !strings.HasPrefix(errOut, "tollguard bans: token rejected: ") || !strings.Contains(errOut, wrong) {
		t.Errorf("wrong token: exit %d, %q", code, errOut)
	}
	code, _, errOut = d.cli(t, "bans", "-c", d.cfg, "--admin", "http://127.0.0.1:1")
	if code != 1 || !strings.HasPrefix(errOut, "tollguard bans: cannot reach tollguard at http://127.0.0.1:1: is `tollguard serve` running?") {
		t.Errorf("no daemon: exit %d, %q", code, errOut)
	}
	code, _, errOut = d.cli(t, "unban", "203.0.113.7", "--admin", "127.0.0.1:1", "--token-file", filepath.Join(d.dir, "none"))
	if code != 1 || !strings.Contains(errOut, "does not exist: `tollguard serve` creates it at first start") {
		t.Errorf("no token file: exit %d, %q", code, errOut)
	}
}
