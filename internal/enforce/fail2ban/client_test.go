package fail2ban

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/testkit"
)

// After logrotate renames the log and creates a new one (no
// copytruncate), the next lines go to the new file.
func TestReopensAfterRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fail2ban.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Apply(ban(decision.ScopeIP, "203.0.113.1/32", "", "enumeration", t0.Add(time.Hour)))
	waitLines(t, path, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	w.Apply(ban(decision.ScopeIP, "203.0.113.2/32", "", "enumeration", t0.Add(time.Hour)))
	waitLines(t, path, 1)
	if err := os.Remove(path); err != nil { // rotated with a delay: no file at all
		t.Fatal(err)
	}
	w.Apply(ban(decision.ScopeIP, "203.0.113.3/32", "", "enumeration", t0.Add(time.Hour)))
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(old), "203.0.113.1") || strings.Count(string(old), "\n") != 1 {
		t.Errorf("rotated file: %q", old)
	}
	if !strings.Contains(string(cur), "203.0.113.3") || strings.Count(string(cur), "\n") != 1 {
		t.Errorf("new file: %q", cur)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("new file mode: %v %v", fi, err)
	}
}

func waitLines(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, want %d lines", path, b, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With a real fail2ban-server running the shipped filter: a ban line from
// the Writer bans the address, a ban written after a rotation too, and
// Client.Unban lifts a ban through fail2ban-client.
func TestClientAgainstFail2ban(t *testing.T) {
	filter, err := filepath.Abs("../../../examples/fail2ban/filter.d/tollguard.conf")
	if err != nil {
		t.Fatal(err)
	}
	f2b := testkit.StartFail2ban(t, filter)
	w, err := Open(f2b.Log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	now := time.Now()
	w.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("198.51.100.7/32"),
		Rule: "register_failure[2]", At: now, Until: now.Add(time.Hour)})
	waitAction(t, f2b, "ban 198.51.100.7")
	if err := os.Rename(f2b.Log, f2b.Log+".1"); err != nil {
		t.Fatal(err)
	}
	w.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("198.51.100.8/32"),
		Rule: "enumeration", At: now, Until: now.Add(time.Hour)})
	waitAction(t, f2b, "ban 198.51.100.8")

	c := Client{Jail: "tollguard", Command: f2b.Client}
	if n, err := c.Unban(t.Context(), netip.MustParseAddr("198.51.100.7")); err != nil || n != 1 {
		t.Fatalf("Unban = %d, %v", n, err)
	}
	waitAction(t, f2b, "unban 198.51.100.7")
	if n, err := c.Unban(t.Context(), netip.MustParseAddr("198.51.100.99")); err != nil || n != 0 {
		t.Errorf("Unban of an address fail2ban never banned = %d, %v", n, err)
	}
	bad := Client{Jail: "nojail", Command: f2b.Client}
	if _, err := bad.Unban(t.Context(), netip.MustParseAddr("198.51.100.8")); err == nil || !strings.Contains(err.Error(), "nojail") {
		t.Errorf("Unban in a jail that does not exist: %v", err)
	}
}

func waitAction(t *testing.T, f *testkit.Fail2ban, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !slices.Contains(f.Actions(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("fail2ban actions %q lack %q", f.Actions(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The shipped jail, as fail2ban itself reads it (fail2ban-client -d with
// the system's action files): it drops (never rejects), on the SIP ports
// over UDP and TCP only, and ignores loopback.
func TestShippedJail(t *testing.T) {
	if _, err := exec.LookPath("fail2ban-client"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("fail2ban-client is required under CI (scripts/install-test-deps.sh installs fail2ban)")
		}
		t.Skip("fail2ban-client not installed")
	}
	actions, err := filepath.Glob("/etc/fail2ban/action.d/nftables*.conf")
	if err != nil || len(actions) == 0 {
		t.Fatalf("fail2ban's nftables actions not found: %v", err)
	}
	dir := t.TempDir()
	logPath := filepath.Join(dir, "tollguard.log")
	jail, err := os.ReadFile("../../../examples/fail2ban/jail.d/tollguard.local")
	if err != nil {
		t.Fatal(err)
	}
	filter, err := os.ReadFile("../../../examples/fail2ban/filter.d/tollguard.conf")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"fail2ban.conf":           "[Definition]\nsocket = " + dir + "/s.sock\npidfile = " + dir + "/p\ndbfile = :memory:\n",
		"jail.conf":               "[DEFAULT]\nbackend = polling\n",
		"jail.d/tollguard.local":  strings.ReplaceAll(string(jail), "/var/log/tollguard/fail2ban.log", logPath),
		"filter.d/tollguard.conf": string(filter),
		"tollguard.log":           "",
	}
	for _, a := range actions {
		b, err := os.ReadFile(a)
		if err != nil {
			t.Fatal(err)
		}
		files["action.d/"+filepath.Base(a)] = string(b)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("fail2ban-client", "-c", dir, "-d").CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-client -d: %v\n%s", err, out)
	}
	dump := string(out)
	for _, want := range []string{
		`['set', 'tollguard', 'addignoreip', '127.0.0.1/8', '::1']`,
		`for proto in $(echo 'udp,tcp'`,
		`$proto dport \\{ $(echo '5060,5061' | sed s/:/-/g) \\} <addr_family> saddr @<addr_set> drop`,
		`['blocktype', 'drop']`,
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("the jail as fail2ban reads it lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(dump), "reject") {
		t.Error("the shipped jail rejects: it must drop silently")
	}
	if strings.Contains(dump, "'tollguard-failures'") && strings.Contains(dump, "['add', 'tollguard-failures'") {
		t.Error("both jails are enabled")
	}
}
