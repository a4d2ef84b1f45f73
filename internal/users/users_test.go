package users

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)

const pw = "correct horse battery"

func newFile(t testing.TB) (*File, *clock) {
	t.Helper()
	f := Open(t.TempDir())
	f.cost = bcrypt.MinCost // the hashes are not what these tests measure
	return f, &clock{t: t0}
}

func addUser(t testing.TB, f *File, name string, role Role) User {
	t.Helper()
	u, err := f.Add(name, role, pw, t0)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func code(t *testing.T, u User, at time.Time) string {
	t.Helper()
	c, err := Code(u.TOTP, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var home = netip.MustParseAddr("192.0.2.10")

func TestFileAddListDeleteReset(t *testing.T) {
	f, _ := newFile(t)
	u := addUser(t, f, "alice", Admin)
	addUser(t, f, "bob", Viewer)
	if _, err := f.Add("alice", Viewer, pw, t0); !errors.Is(err, ErrExists) {
		t.Errorf("adding alice twice: %v, want ErrExists", err)
	}
	fi, err := os.Stat(f.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("users file mode: %v %v, want 0600", fi.Mode(), err)
	}
	data, _ := os.ReadFile(f.Path())
	if strings.Contains(string(data), pw) {
		t.Error("users file holds the password in clear")
	}
	// A second handle (another process: the CLI) sees the users.
	other := Open(filepath.Dir(f.Path()))
	list, err := other.List()
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Role != Viewer {
		t.Fatalf("List = %+v, %v", list, err)
	}
	r, err := other.ResetMFA("alice", t0.Add(time.Second))
	if err != nil || r.TOTP == u.TOTP || r.Generation == u.Generation {
		t.Fatalf("ResetMFA = %+v, %v: want a new secret and generation", r, err)
	}
	if err := other.Delete("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get("bob"); !errors.Is(err, ErrNoUser) {
		t.Errorf("first handle still sees bob: %v", err)
	}
	if err := other.Delete("bob"); !errors.Is(err, ErrNoUser) {
		t.Errorf("deleting bob twice: %v", err)
	}
	got, _ := f.Get("alice")
	if got.TOTP != r.TOTP {
		t.Error("first handle did not see the reset")
	}
}

func TestFileRefusesOpenMode(t *testing.T) {
	f, _ := newFile(t)
	addUser(t, f, "alice", Admin)
	if err := os.Chmod(f.Path(), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Dir(f.Path())).List(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("List of a 0644 users file = %v, want a refusal naming chmod 600", err)
	}
}

func TestCheckNameAndPassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"alice", true}, {"ops.team-1_x", true}, {"", false}, {"token", false}, {"TOKEN", false},
		{"a b", false}, {"<script>", false}, {strings.Repeat("a", 65), false}, {"é", false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	for _, p := range []string{"short", strings.Repeat("x", 73)} {
		if _, err := HashPassword(p); err == nil {
			t.Errorf("HashPassword(%d bytes) accepted", len(p))
		}
	}
	h, err := HashPassword(pw)
	if err != nil || !strings.HasPrefix(h, "$2a$10$") || !checkPassword(h, pw, nil) || checkPassword(h, pw+"x", nil) {
		t.Errorf("bcrypt round trip failed: %q %v", h, err)
	}
	f, _ := newFile(t)
	if checkPassword("", pw, f.dummyHash()) || !strings.HasPrefix(string(Open(t.TempDir()).dummyHash()), "$2a$10$") {
		t.Error("an empty hash (unknown user) must never match, and the dummy must have the production cost")
	}
}

func TestLoginTOTPOnce(t *testing.T) {
	f, c := newFile(t)
	u := addUser(t, f, "alice", Operator)
	a := NewAuthenticator(f, Limits{}, c.Now)
	good := code(t, u, c.Now())
	if _, err := a.Login("alice", pw, "000000", home); !errors.Is(err, ErrLogin) && good != "000000" {
		t.Errorf("wrong code: %v, want ErrLogin", err)
	}
	if _, err := a.Login("alice", "wrong password!", good, home); !errors.Is(err, ErrLogin) {
		t.Errorf("wrong password: %v, want ErrLogin", err)
	}
	got, err := a.Login("alice", pw, good, home)
	if err != nil || got.Name != "alice" || got.Role != Operator {
		t.Fatalf("good login = %+v, %v", got, err)
	}
	// The same code again, within its 30 s and from another handle: refused.
	c.Add(5 * time.Second)
	if _, err := a.Login("alice", pw, good, home); !errors.Is(err, ErrLogin) {
		t.Errorf("replayed code: %v, want ErrLogin", err)
	}
	a2 := NewAuthenticator(Open(filepath.Dir(f.Path())), Limits{}, c.Now)
	if _, err := a2.Login("alice", pw, good, home); !errors.Is(err, ErrLogin) {
		t.Errorf("replayed code through another process: %v, want ErrLogin", err)
	}
	// An older code (previous step, within skew) is refused too once a
	// later one was used.
	if _, err := a.Login("alice", pw, code(t, u, c.Now().Add(-30*time.Second)), home); !errors.Is(err, ErrLogin) {
		t.Errorf("code of an earlier step: %v, want ErrLogin", err)
	}
	// The next step's code works.
	c.Add(30 * time.Second)
	if _, err := a.Login("alice", pw, code(t, u, c.Now()), home); err != nil {
		t.Errorf("next step's code: %v", err)
	}
	if _, err := a.Login("nobody", pw, code(t, u, c.Now()), home); !errors.Is(err, ErrLogin) {
		t.Errorf("unknown user: %v, want the same ErrLogin", err)
	}
}

func TestLockoutPerUserAndSource(t *testing.T) {
	f, c := newFile(t)
	u := addUser(t, f, "admin", Admin)
	a := NewAuthenticator(f, Limits{Attempts: 3, SourceAttempts: 5, Window: time.Minute, Lockout: 10 * time.Minute}, c.Now)
	attacker := netip.MustParseAddr("203.0.113.7")
	for i := range 3 {
		if _, err := a.Login("admin", "guess-guess-"+string(rune('a'+i)), "123456", attacker); !errors.Is(err, ErrLogin) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	// The attacker is locked out even with the right credentials...
	if _, err := a.Login("admin", pw, code(t, u, c.Now()), attacker); !errors.Is(err, ErrLocked) {
		t.Errorf("attacker after 3 failures: %v, want ErrLocked", err)
	}
	// ...but the admin at their own address is not.
	if _, err := a.Login("admin", pw, code(t, u, c.Now()), home); err != nil {
		t.Errorf("admin from home while attacker is locked out: %v", err)
	}
	// Per-source: spraying other names from one address locks the address.
	spray := netip.MustParseAddr("198.51.100.1")
	for _, n := range []string{"a1", "a2", "a3", "a4", "a5"} {
		a.Login(n, "guess-guess-guess", "123456", spray)
	}
	if _, err := a.Login("admin", pw, code(t, u, c.Now().Add(30*time.Second)), spray); !errors.Is(err, ErrLocked) {
		t.Errorf("spraying source: %v, want ErrLocked", err)
	}
	// Lockouts end.
	c.Add(11 * time.Minute)
	if _, err := a.Login("admin", pw, code(t, u, c.Now()), attacker); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
}

func TestTOTPBruteForceLocksAcrossSources(t *testing.T) {
	f, c := newFile(t)
	u := addUser(t, f, "admin", Admin)
	a := NewAuthenticator(f, Limits{Attempts: 100, SourceAttempts: 100, CodeAttempts: 4, Window: time.Minute, Lockout: 10 * time.Minute}, c.Now)
	good := code(t, u, c.Now())
	bad := "000000"
	if good == bad {
		bad = "111111"
	}
	// Someone with the password tries codes from four addresses.
	for i := range 4 {
		src := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		if _, err := a.Login("admin", pw, bad, src); !errors.Is(err, ErrLogin) {
			t.Fatalf("code guess %d: %v", i, err)
		}
	}
	// The right code is refused now, with the answer a wrong password gets.
	if _, err := a.Login("admin", pw, good, netip.MustParseAddr("203.0.113.99")); !errors.Is(err, ErrLogin) {
		t.Errorf("after 4 wrong codes from different sources: %v, want ErrLogin", err)
	}
	// It is not spent: once the lock ends, a fresh code works.
	c.Add(11 * time.Minute)
	if _, err := a.Login("admin", pw, code(t, u, c.Now()), home); err != nil {
		t.Errorf("after the TOTP lock: %v", err)
	}
}

func TestSessions(t *testing.T) {
	f, c := newFile(t)
	u := addUser(t, f, "alice", Viewer)
	s := NewSessions(f, 10*time.Minute, time.Hour, c.Now)
	tok, sess, err := s.Create(u, nil)
	if err != nil || len(tok) != 64 || len(sess.CSRF) != 64 || sess.CSRF == tok {
		t.Fatalf("Create = %q %+v %v", tok, sess, err)
	}
	tok2, _, _ := s.Create(u, nil)
	if tok2 == tok {
		t.Fatal("two logins got the same token")
	}
	if _, err := s.Get("not-a-token", true); !errors.Is(err, ErrNoSession) {
		t.Errorf("unknown token: %v", err)
	}
	// Idle timeout: touched at 9 minutes, alive at 18, dead 11 after.
	c.Add(9 * time.Minute)
	if _, err := s.Get(tok, true); err != nil {
		t.Fatal(err)
	}
	c.Add(9 * time.Minute)
	if _, err := s.Get(tok, false); err != nil {
		t.Fatalf("touched 9 min ago: %v", err)
	}
	c.Add(2 * time.Minute) // 11 min since the last touch; the untouched Get did not count
	if _, err := s.Get(tok, true); !errors.Is(err, ErrNoSession) {
		t.Errorf("idle 11 min: %v, want ErrNoSession", err)
	}
	// Role changes apply; a TOTP reset ends the session.
	tok3, _, _ := s.Create(u, nil)
	if err := f.Update(func(us []User) ([]User, error) { us[0].Role = Operator; return us, nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(tok3, true); err != nil || got.Role != Operator {
		t.Errorf("after role change: %+v %v", got, err)
	}
	if _, err := f.ResetMFA("alice", c.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(tok3, true); !errors.Is(err, ErrNoSession) {
		t.Errorf("after reset-mfa: %v, want ErrNoSession", err)
	}
	// Absolute age.
	u2, _ := f.Get("alice")
	tok4, _, _ := s.Create(u2, nil)
	for range 7 {
		c.Add(9 * time.Minute)
		s.Get(tok4, true)
	}
	if _, err := s.Get(tok4, true); !errors.Is(err, ErrNoSession) {
		t.Errorf("session older than maxAge: %v", err)
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		r, min Role
		want   bool
	}{
		{Viewer, Viewer, true}, {Viewer, Operator, false}, {Operator, Operator, true},
		{Operator, Admin, false}, {Admin, Operator, true}, {"", Viewer, false}, {"root", Viewer, false},
	} {
		if got := tc.r.AtLeast(tc.min); got != tc.want {
			t.Errorf("%q.AtLeast(%q) = %v", tc.r, tc.min, got)
		}
	}
	if _, err := ParseRole("superuser"); err == nil {
		t.Error("ParseRole accepted superuser")
	}
}

func TestOTPAuthURIAndQR(t *testing.T) {
	u := User{Name: "alice", TOTP: "JBSWY3DPEHPK3PXP"}
	uri := OTPAuthURI(u)
	if !strings.HasPrefix(uri, "otpauth://totp/tollguard:alice?") || !strings.Contains(uri, "secret=JBSWY3DPEHPK3PXP") || !strings.Contains(uri, "issuer=tollguard") {
		t.Errorf("OTPAuthURI = %q", uri)
	}
	qr, err := TerminalQR(uri)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(qr, "\n"), "\n")
	if len(lines) < 15 || !strings.Contains(qr, "▄") || !strings.Contains(qr, " ") {
		t.Errorf("QR has %d lines, no dark modules:\n%s", len(lines), qr)
	}
}
