package intel

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

// netnsEnv marks a test binary running inside its own network namespace.
const netnsEnv = "TOLLGUARD_INTEL_NETNS"

// TestFirewallBouncer runs Debian's crowdsec-firewall-bouncer (nftables
// mode) against the decision stream, inside a private network namespace
// so no host firewall is touched. It checks the exact requests the bouncer
// made and that its nftables set holds the banned addresses, then follows
// a ban added and a ban lifted.
func TestFirewallBouncer(t *testing.T) {
	if os.Getenv(netnsEnv) != "1" {
		reexecInNetns(t)
		return
	}
	notInitialNetns(t)
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v %s", err, out)
	}

	set := decision.NewSet()
	now := time.Now()
	ban := func(p string, d time.Duration) {
		set.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix(p),
			Origin: "engine", Rule: "jail", At: now, Until: now.Add(d)})
	}
	ban("192.0.2.1/32", time.Hour)
	ban("2001:db8::5/128", time.Hour)
	exp, err := NewExport(ExportOptions{Bans: set.List, APIKeys: []string{bouncerKey}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reqs []string
	h := exp.Handler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, fmt.Sprintf("%s %s key=%v ua=%s", r.Method, r.URL.RequestURI(),
			r.Header.Get("X-Api-Key") == bouncerKey, strings.SplitN(r.UserAgent(), "/", 2)[0]))
		mu.Unlock()
		h.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir := t.TempDir()
	cfg := fmt.Sprintf(`mode: nftables
pid_dir: %[1]s
update_frequency: 200ms
daemonize: false
log_mode: file
log_dir: %[1]s
log_level: debug
api_url: http://%[2]s/
api_key: %[3]s
disable_ipv6: false
deny_action: DROP
deny_log: false
supported_decisions_types:
  - ban
blacklists_ipv4: tg-blacklists
blacklists_ipv6: tg6-blacklists
nftables:
  ipv4:
    enabled: true
    set-only: false
    table: tgtest
    chain: tgtest-chain
  ipv6:
    enabled: true
    set-only: false
    table: tgtest6
    chain: tgtest6-chain
prometheus:
  enabled: false
  listen_addr: 127.0.0.1
  listen_port: 60601
`, dir, ln.Addr(), bouncerKey)
	path := filepath.Join(dir, "bouncer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("crowdsec-firewall-bouncer", "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "crowdsec-firewall-bouncer.log"))
		return out.String() + string(b)
	}
	setHas := func(family, table, set, addr string) bool {
		o, _ := exec.Command("nft", "list", "set", family, table, set).CombinedOutput()
		return strings.Contains(string(o), addr)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				nft, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("gave up waiting: %s\nrequests: %q\nnft: %s\nbouncer: %s", what, reqs, nft, logs())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("startup bans in the bouncer's sets", func() bool {
		return setHas("ip", "tgtest", "tg-blacklists", "192.0.2.1") && setHas("ip6", "tgtest6", "tg6-blacklists", "2001:db8::5")
	})
	ban("192.0.2.77/32", time.Hour)
	set.Remove(decision.Key{Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("192.0.2.1/32")}, true)
	wait("a new ban added and a lifted one removed", func() bool {
		return setHas("ip", "tgtest", "tg-blacklists", "192.0.2.77") && !setHas("ip", "tgtest", "tg-blacklists", "192.0.2.1 ")
	})
	if setHas("ip", "tgtest", "tg-blacklists", "192.0.2.1,") || setHas("ip", "tgtest", "tg-blacklists", "192.0.2.1 timeout") {
		t.Fatal("the lifted ban is still in the set")
	}

	mu.Lock()
	defer mu.Unlock()
	if len(reqs) < 2 {
		t.Fatalf("requests %q", reqs)
	}
	first := "GET /v1/decisions/stream?startup=true key=true ua=crowdsec-firewall-bouncer"
	if reqs[0] != first {
		t.Fatalf("first request %q, want %q (all: %q)", reqs[0], first, reqs)
	}
	for _, r := range reqs[1:] {
		if !strings.HasPrefix(r, "GET /v1/decisions/stream") || strings.Contains(r, "startup=true") || !strings.Contains(r, "key=true") {
			t.Fatalf("delta request %q (all: %q)", r, reqs)
		}
	}
	listing, _ := exec.Command("nft", "list", "set", "ip", "tgtest", "tg-blacklists").CombinedOutput()
	t.Logf("bouncer requests: %q\nits set now:\n%s", reqs, listing)
}

// reexecInNetns runs the calling test again under unshare -n. Without
// root, unshare, ip, nft or the bouncer it fails under CI and skips
// otherwise.
func reexecInNetns(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"unshare", "nft", "ip", "crowdsec-firewall-bouncer"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		msg := "needs " + strings.Join(missing, ", ") + " (scripts/install-test-deps.sh)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run", "^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in a private network namespace: %v\n%s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
}

// notInitialNetns refuses to go on in the host's network namespace.
func notInitialNetns(t *testing.T) {
	t.Helper()
	var self, init syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &self); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat("/proc/1/ns/net", &init); err == nil && self.Ino == init.Ino {
		t.Fatalf("%s is set but this is the initial network namespace; refusing to touch its firewall", netnsEnv)
	}
}
