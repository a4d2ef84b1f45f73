package cli

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/users"
)

// userEnv returns an Env whose default config points data_dir at a
// fresh directory.
func userEnv(t *testing.T, stdin string) (*Env, *strings.Builder, string) {
	t.Helper()
	e, out, _ := testEnv(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tollguard.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nsip: {listen: []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.DefaultConfig = cfg
	e.Stdin = strings.NewReader(stdin)
	var sb strings.Builder
	e.Stdout = &sb
	_ = out
	return e, &sb, filepath.Join(dir, "data")
}

func TestUserCommands(t *testing.T) {
	e, out, data := userEnv(t, "correct horse battery\n")
	if code := run(context.Background(), e, []string{"user", "add", "alice", "--role", "operator", "--password-stdin"}, nil); code != 0 {
		t.Fatalf("user add: exit %d: %s", code, out)
	}
	text := out.String()
	uri := regexp.MustCompile(`otpauth://totp/tollguard:alice\?\S+`).FindString(text)
	if uri == "" || !strings.Contains(text, "▄") {
		t.Fatalf("user add printed no otpauth URI or QR code:\n%s", text)
	}
	u, err := users.Open(data).Get("alice")
	if err != nil || u.Role != users.Operator || !strings.Contains(uri, "secret="+u.TOTP) {
		t.Fatalf("stored user %+v %v; URI %s", u, err, uri)
	}
	// The password from stdin logs in with the enrolled secret.
	code, _ := users.Code(u.TOTP, time.Now())
	if _, err := users.NewAuthenticator(users.Open(data), users.Limits{}, nil).Login("alice", "correct horse battery", code, netipLoopback()); err != nil {
		t.Errorf("login with the added user: %v", err)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		exit  int
	}{
		{"duplicate", []string{"user", "add", "alice", "--role", "admin", "--password-stdin"}, "another long password\n", ExitError},
		{"bad role", []string{"user", "add", "bob", "--role", "root", "--password-stdin"}, "another long password\n", ExitUsage},
		{"short password", []string{"user", "add", "bob", "--role", "viewer", "--password-stdin"}, "short\n", ExitError},
		{"empty stdin", []string{"user", "add", "bob", "--role", "viewer", "--password-stdin"}, "", ExitUsage},
		{"no terminal", []string{"user", "add", "bob", "--role", "viewer"}, "", ExitUsage},
		{"bad name", []string{"user", "add", "<b>", "--role", "viewer", "--password-stdin"}, "another long password\n", ExitError},
		{"del unknown", []string{"user", "del", "nobody"}, "", ExitError},
		{"no subcommand", []string{"user"}, "", ExitUsage},
		{"unknown subcommand", []string{"user", "promote", "alice"}, "", ExitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e2, _, _ := userEnv(t, tc.stdin)
			e2.DefaultConfig = e.DefaultConfig
			if got := run(context.Background(), e2, tc.args, nil); got != tc.exit {
				t.Errorf("exit %d, want %d", got, tc.exit)
			}
		})
	}

	// A security key (as the console registers it), for list and reset-mfa.
	if err := users.Open(data).Update(func(us []users.User) ([]users.User, error) {
		us[0].Keys = append(us[0].Keys, users.Key{ID: []byte{1, 2, 3}, Name: "laptop", PublicKey: []byte{4}})
		us[0].Handle = []byte("0123456789abcdef0123456789abcdef")
		return us, nil
	}); err != nil {
		t.Fatal(err)
	}
	e3, out3, _ := userEnv(t, "")
	e3.DefaultConfig = e.DefaultConfig
	if code := run(context.Background(), e3, []string{"user", "list", "--json"}, nil); code != 0 {
		t.Fatalf("user list: %d", code)
	}
	var rows []struct {
		Name, Role string
		Keys       int
	}
	if err := json.Unmarshal([]byte(out3.String()), &rows); err != nil || len(rows) != 1 || rows[0].Name != "alice" || rows[0].Role != "operator" || rows[0].Keys != 1 {
		t.Errorf("user list --json = %s (%v)", out3, err)
	}
	e6, out6, _ := userEnv(t, "")
	e6.DefaultConfig = e.DefaultConfig
	if code := run(context.Background(), e6, []string{"user", "list"}, nil); code != 0 || !regexp.MustCompile(`(?m)^KEYS|\bKEYS\b`).MatchString(out6.String()) ||
		!regexp.MustCompile(`(?m)^alice\s+operator\s+1\s`).MatchString(out6.String()) {
		t.Errorf("user list = %d %q", code, out6)
	}
	e4, out4, _ := userEnv(t, "")
	e4.DefaultConfig = e.DefaultConfig
	if code := run(context.Background(), e4, []string{"user", "reset-mfa", "alice"}, nil); code != 0 || !strings.Contains(out4.String(), "otpauth://") {
		t.Fatalf("reset-mfa: %d %s", code, out4)
	}
	if u2, _ := users.Open(data).Get("alice"); u2.TOTP == u.TOTP || len(u2.Keys) != 0 || len(u2.Handle) != 0 {
		t.Errorf("reset-mfa kept the secret or keys: %+v", u2)
	}
	if !strings.Contains(out4.String(), "1 security key(s) removed") {
		t.Errorf("reset-mfa output: %s", out4)
	}
	e5, _, _ := userEnv(t, "")
	e5.DefaultConfig = e.DefaultConfig
	if code := run(context.Background(), e5, []string{"user", "del", "alice"}, nil); code != 0 {
		t.Fatalf("del: %d", code)
	}
	if _, err := users.Open(data).Get("alice"); err == nil {
		t.Error("alice still there after del")
	}
}

// The synopsis names every flag `tollguard help user` prints, and the
// reverse.
func TestUserHelpMatchesFlags(t *testing.T) {
	e, out, _ := testEnv(t)
	if code := run(context.Background(), e, []string{"help", "user"}, nil); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var c Command
	for _, b := range builtin() {
		if b.Name == "user" {
			c = b
		}
	}
	var flags []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f, ok := strings.CutPrefix(l, "  -"); ok {
			flags = append(flags, strings.Fields(f)[0])
		}
	}
	var named []string
	for _, m := range regexp.MustCompile(`(?:^|[\s\[])--?([a-z-]+)`).FindAllStringSubmatch(c.Args, -1) {
		named = append(named, m[1])
	}
	slices.Sort(flags)
	slices.Sort(named)
	if len(flags) < 4 || !slices.Equal(flags, named) {
		t.Errorf("help prints flags %q, synopsis %q names %q", flags, c.Args, named)
	}
}

func netipLoopback() netip.Addr { return netip.MustParseAddr("127.0.0.1") }
