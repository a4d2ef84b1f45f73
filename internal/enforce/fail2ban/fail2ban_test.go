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
	"github.com/tollguard/tollguard/internal/event"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 40, 0, time.UTC)

func failure(src, account, method string, code int) *event.AuthFailure {
	return &event.AuthFailure{
		Meta:    event.Meta{Time: t0, Source: netip.MustParseAddrPort(src)},
		SIP:     event.SIP{Method: method, AuthUser: account, HasCredentials: true},
		Account: account, Code: code,
	}
}

func ban(scope decision.Scope, prefix, account, rule string, until time.Time) decision.Decision {
	return decision.Decision{Type: decision.TypeBan, Scope: scope, Prefix: netip.MustParsePrefix(prefix), Account: account,
		Origin: decision.OriginEngine, Rule: rule, At: t0, Until: until}
}

func TestFormat(t *testing.T) {
	cases := []struct {
		name string
		line []byte
		want string
	}{
		{"failure", FormatFailure(failure("198.51.100.7:5060", "1001", "REGISTER", 403)),
			"2025-03-01T12:00:40.000000Z tollguard: auth failure ip[198.51.100.7] account[1001] method[REGISTER] code[403]\n"},
		{"mapped address", FormatFailure(failure("[::ffff:198.51.100.7]:5060", "1001", "INVITE", 407)),
			"2025-03-01T12:00:40.000000Z tollguard: auth failure ip[198.51.100.7] account[1001] method[INVITE] code[407]\n"},
		{"injection", FormatFailure(failure("198.51.100.7:5060", "x] ip[6.6.6.6]\n2025-03-01T12:00:41Z tollguard: ban ip[6.6.6.6]", "REGISTER", 403)),
			"2025-03-01T12:00:40.000000Z tollguard: auth failure ip[198.51.100.7] account[x__ip_6.6.6.6__2025-03-01T12:00:41Z_tollguard:_ban_ip_6.6.6.6_] method[REGISTER] code[403]\n"},
		{"ip_account ban", FormatDecision(ban(decision.ScopeIPAccount, "198.51.100.7/32", "1001", "register_failure[0]", t0.Add(180*time.Second))),
			"2025-03-01T12:00:40.000000Z tollguard: ban ip[198.51.100.7] account[1001] scope[ip_account] rule[register_failure[0]] until[2025-03-01T12:03:40Z]\n"},
		{"ip ban forever", FormatDecision(ban(decision.ScopeIP, "203.0.113.9/32", "", "admin", time.Time{})),
			"2025-03-01T12:00:40.000000Z tollguard: ban ip[203.0.113.9] account[] scope[ip] rule[admin] until[never]\n"},
		{"prefix ban", FormatDecision(ban(decision.ScopePrefix, "2001:db8:1:2::/64", "", "flood", t0.Add(time.Minute))),
			"2025-03-01T12:00:40.000000Z tollguard: ban net[2001:db8:1:2::/64] account[] scope[prefix] rule[flood] until[2025-03-01T12:01:40Z]\n"},
		{"account lock", FormatDecision(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1001", Rule: "distributed", At: t0, Until: t0.Add(time.Hour)}),
			"2025-03-01T12:00:40.000000Z tollguard: lock account[1001] rule[distributed] until[2025-03-01T13:00:40Z]\n"},
		{"unban", FormatDecision(decision.Decision{Type: decision.TypeUnban, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("203.0.113.9/32"), Rule: "admin", At: t0}),
			"2025-03-01T12:00:40.000000Z tollguard: unban ip[203.0.113.9] account[] scope[ip] rule[admin]\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.line) != tc.want {
				t.Fatalf("got  %q\nwant %q", tc.line, tc.want)
			}
		})
	}
}

func TestSanitizeCap(t *testing.T) {
	got := string(Sanitize(nil, strings.Repeat("a", 200)))
	if len(got) != MaxField {
		t.Fatalf("len = %d, want %d", len(got), MaxField)
	}
}

// writeLog writes a realistic log through a Writer and returns its path.
func writeLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fail2ban.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.Observe(failure("198.51.100.7:5060", "1001", "REGISTER", 403))
	}
	w.Observe(&event.AuthFailure{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort("198.51.100.99:5060")}, Account: "1001", Code: 401, Stale: true})
	w.Observe(&event.Request{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort("198.51.100.98:5060")}})
	w.Apply(ban(decision.ScopeIPAccount, "198.51.100.7/32", "1001", "register_failure[0]", t0.Add(3*time.Minute)))
	w.Observe(failure("[2001:db8::7]:5060", "1002", "INVITE", 407))
	// An attacker tries to forge a ban line of 6.6.6.6 through the account.
	w.Observe(failure("192.0.2.50:5060", "1] account[x] method[A] code[403]\n2025-03-01T12:00:41.000000Z tollguard: ban ip[6.6.6.6] account[] scope[ip] rule[x] until[never]", "REGISTER", 403))
	w.Apply(ban(decision.ScopeIP, "203.0.113.9/32", "", "register_failure[2]", t0.Add(time.Hour)))
	w.Apply(ban(decision.ScopeIP, "2001:db8::5/128", "", "scanner", t0.Add(time.Hour)))
	w.Apply(ban(decision.ScopePrefix, "2001:db8:1:2::/64", "", "flood", t0.Add(time.Hour)))
	w.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1001", Rule: "distributed", At: t0, Until: t0.Add(time.Hour)})
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFilterWithFail2banRegex runs the shipped filter over a log the Writer
// produced, with the real fail2ban-regex.
func TestFilterWithFail2banRegex(t *testing.T) {
	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("fail2ban-regex is required under CI (scripts/install-test-deps.sh installs fail2ban)")
		}
		t.Skip("fail2ban-regex not installed")
	}
	filter, err := filepath.Abs("../../../examples/fail2ban/filter.d/tollguard.conf")
	if err != nil {
		t.Fatal(err)
	}
	logPath := writeLog(t)
	cases := []struct {
		mode string
		want []string
	}{
		{"normal", []string{"203.0.113.9", "2001:db8::5"}},
		{"failures", []string{"198.51.100.7", "198.51.100.7", "198.51.100.7", "2001:db8::7", "192.0.2.50"}},
		{"aggressive", []string{"198.51.100.7", "198.51.100.7", "198.51.100.7", "2001:db8::7", "192.0.2.50", "203.0.113.9", "2001:db8::5"}},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			out, err := exec.Command(bin, "-o", "ip", logPath, filter+"[mode="+tc.mode+"]").CombinedOutput()
			if err != nil {
				t.Fatalf("fail2ban-regex: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

func TestQueueFullDrops(t *testing.T) {
	block := make(chan struct{})
	w := New(writerFunc(func(p []byte) (int, error) { <-block; return len(p), nil }), Options{})
	for range QueueSize + 100 {
		w.Apply(ban(decision.ScopeIP, "203.0.113.9/32", "", "flood", t0))
	}
	close(block)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testCounter(w); got < 99 {
		t.Fatalf("dropped %v lines, want at least 99 (Apply must not block)", got)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
