package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

var testRP = RP{ID: "localhost", Origin: "http://localhost:9061"}

// keyAuth is an authenticator over a fresh file with alice (operator)
// who registered one software key.
type keyAuth struct {
	f    *File
	c    *clock
	a    *Authenticator
	u    User
	sess Session
	key  *softKey
}

const bindAlice = "session-of-alice"

func newKeyAuth(t testing.TB, lim Limits) *keyAuth {
	t.Helper()
	f, c := newFile(t)
	u := addUser(t, f, "alice", Operator)
	ka := &keyAuth{f: f, c: c, a: NewAuthenticator(f, lim, c.Now), u: u,
		sess: Session{User: u.Name, Role: u.Role, Generation: u.Generation}}
	ka.key = ka.enrol(t, "first key")
	return ka
}

// enrol registers a new software key to alice.
func (ka *keyAuth) enrol(t testing.TB, name string) *softKey {
	t.Helper()
	k := newSoftKey(t)
	id, opts, err := ka.a.BeginAddKey(ka.sess, bindAlice, testRP)
	if err != nil {
		t.Fatal(err)
	}
	if rk := opts.Response.AuthenticatorSelection.ResidentKey; rk != "required" {
		t.Errorf("residentKey %q, want required", rk)
	}
	if uv := opts.Response.AuthenticatorSelection.UserVerification; uv != "preferred" {
		t.Errorf("userVerification %q, want preferred", uv)
	}
	if _, err := ka.a.FinishAddKey(ka.sess, bindAlice, id, testRP, name, k.register(opts, testRP.Origin, testRP.ID)); err != nil {
		t.Fatalf("registering %s: %v", name, err)
	}
	return k
}

// begin starts a key login from src.
func (ka *keyAuth) begin(t testing.TB, src netip.Addr) (string, string) {
	t.Helper()
	id, opts, err := ka.a.BeginKeyLogin(testRP, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Response.AllowedCredentials) != 0 || opts.Response.RelyingPartyID != testRP.ID {
		t.Fatalf("login options name credentials or the wrong RP: %+v", opts.Response)
	}
	return id, opts.Response.Challenge.String()
}

// login runs a whole key login of alice from src with key.
func (ka *keyAuth) login(t testing.TB, key *softKey, src netip.Addr) (User, Key, error) {
	t.Helper()
	id, ch := ka.begin(t, src)
	key.count++
	return ka.a.LoginKey("alice", pw, id, testRP, key.assertAt(ch, testRP.Origin, testRP.ID), src)
}

func TestKeyRegisterAndLogin(t *testing.T) {
	ka := newKeyAuth(t, Limits{})
	u, k, err := ka.login(t, ka.key, home)
	if err != nil {
		t.Fatalf("login with password and key: %v", err)
	}
	if u.Name != "alice" || k.Name != "first key" || k.SignCount != 1 || !k.LastUsed.Equal(t0) {
		t.Errorf("login returned %s / %+v", u.Name, k)
	}
	// Stored: version 2, mode 0600, the key with its new counter.
	data, err := os.ReadFile(ka.f.Path())
	if err != nil {
		t.Fatal(err)
	}
	var doc file
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != 2 {
		t.Fatalf("file version %d: %v", doc.Version, err)
	}
	if fi, _ := os.Stat(ka.f.Path()); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o", fi.Mode().Perm())
	}
	got, _ := ka.f.Get("alice")
	if len(got.Keys) != 1 || got.Keys[0].SignCount != 1 || got.Keys[0].RPID != "localhost" || len(got.Handle) != handleSize {
		t.Errorf("stored user: %+v", got)
	}
	// The user handle is random, not the name.
	if strings.Contains(string(got.Handle), "alice") {
		t.Error("user handle holds the name")
	}
	// A second key; the same one again is refused.
	ka.enrol(t, "spare")
	id, opts, err := ka.a.BeginAddKey(ka.sess, bindAlice, testRP)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(opts.Response.CredentialExcludeList); n != 2 {
		t.Errorf("excludeCredentials lists %d keys, want 2", n)
	}
	if _, err := ka.a.FinishAddKey(ka.sess, bindAlice, id, testRP, "again", ka.key.register(opts, testRP.Origin, testRP.ID)); err == nil {
		t.Error("the same credential registered twice")
	}
}

func TestKeyCeremonySingleUseAndExpiry(t *testing.T) {
	ka := newKeyAuth(t, Limits{Attempts: 100, SourceAttempts: 100, CodeAttempts: 100})
	id, ch := ka.begin(t, home)
	ka.key.count++
	resp := ka.key.assertAt(ch, testRP.Origin, testRP.ID)
	if _, _, err := ka.a.LoginKey("alice", pw, id, testRP, resp, home); err != nil {
		t.Fatal(err)
	}
	// The same ceremony and answer again: refused (single use).
	if _, _, err := ka.a.LoginKey("alice", pw, id, testRP, resp, home); !errors.Is(err, ErrLogin) {
		t.Errorf("replayed ceremony: %v", err)
	}
	// The old answer to a new ceremony: the challenge differs.
	id2, _ := ka.begin(t, home)
	if _, _, err := ka.a.LoginKey("alice", pw, id2, testRP, resp, home); !errors.Is(err, ErrLogin) {
		t.Errorf("old assertion on a new challenge: %v", err)
	}
	// Expiry: answered after two minutes, refused; just before, fine.
	id3, ch3 := ka.begin(t, home)
	ka.c.Add(CeremonyTTL)
	ka.key.count++
	if _, _, err := ka.a.LoginKey("alice", pw, id3, testRP, ka.key.assertAt(ch3, testRP.Origin, testRP.ID), home); !errors.Is(err, ErrLogin) {
		t.Errorf("expired challenge: %v", err)
	}
	id4, ch4 := ka.begin(t, home)
	ka.c.Add(CeremonyTTL - time.Second)
	ka.key.count++
	if _, _, err := ka.a.LoginKey("alice", pw, id4, testRP, ka.key.assertAt(ch4, testRP.Origin, testRP.ID), home); err != nil {
		t.Errorf("challenge answered within its time: %v", err)
	}
	// Bound to the attempt's source: another address cannot finish it.
	id5, ch5 := ka.begin(t, home)
	ka.key.count++
	if _, _, err := ka.a.LoginKey("alice", pw, id5, testRP, ka.key.assertAt(ch5, testRP.Origin, testRP.ID), netip.MustParseAddr("192.0.2.77")); !errors.Is(err, ErrLogin) {
		t.Errorf("finished from another source: %v", err)
	}
	if n := ka.a.ceremonies.len(); n != 0 {
		t.Errorf("%d ceremonies left", n)
	}
}

func TestKeyWrongOriginOrRPRefused(t *testing.T) {
	ka := newKeyAuth(t, Limits{Attempts: 100, SourceAttempts: 100, CodeAttempts: 100})
	for _, tc := range []struct {
		name, origin, rpID string
		finishRP           RP
	}{
		{"page on another origin", "http://localhost:8080", testRP.ID, testRP},
		{"phishing origin", "https://tollguard.example.net", testRP.ID, testRP},
		{"assertion for another RP ID", testRP.Origin, "example.net", testRP},
		{"finished for another relying party", testRP.Origin, testRP.ID, RP{ID: "localhost", Origin: "http://localhost:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ch := ka.begin(t, home)
			ka.key.count++
			_, _, err := ka.a.LoginKey("alice", pw, id, tc.finishRP, ka.key.assertAt(ch, tc.origin, tc.rpID), home)
			if !errors.Is(err, ErrLogin) {
				t.Errorf("LoginKey = %v, want ErrLogin", err)
			}
		})
	}
	// Registration from a foreign origin is refused too.
	k := newSoftKey(t)
	id, opts, err := ka.a.BeginAddKey(ka.sess, bindAlice, testRP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ka.a.FinishAddKey(ka.sess, bindAlice, id, testRP, "evil", k.register(opts, "https://evil.example", testRP.ID)); err == nil {
		t.Error("a key registered from a foreign origin")
	}
	// And from another session.
	id, opts, _ = ka.a.BeginAddKey(ka.sess, bindAlice, testRP)
	if _, err := ka.a.FinishAddKey(ka.sess, "another session", id, testRP, "evil", k.register(opts, testRP.Origin, testRP.ID)); err == nil {
		t.Error("a registration finished by another session")
	}
	// The right key still works after all that.
	if _, _, err := ka.login(t, ka.key, home); err != nil {
		t.Errorf("right key afterwards: %v", err)
	}
}

func TestKeyCounterRegressionRefused(t *testing.T) {
	ka := newKeyAuth(t, Limits{Attempts: 100, SourceAttempts: 100, CodeAttempts: 100})
	clone := ka.key.clone() // counter 0
	for range 3 {
		if _, _, err := ka.login(t, ka.key, home); err != nil {
			t.Fatal(err)
		}
	}
	// The clone signs correctly, but its counter (1) is behind the stored 3.
	_, _, err := ka.login(t, clone, home)
	var ce *CounterError
	if !errors.As(err, &ce) || !errors.Is(err, ErrLogin) || ce.Stored != 3 || ce.Got != 1 || ce.Key != "first key" {
		t.Fatalf("cloned key: %v", err)
	}
	// Equal counters are refused too.
	clone.count = 2
	if _, _, err := ka.login(t, clone, home); !errors.As(err, &ce) {
		t.Errorf("clone at the stored counter: %v", err)
	}
	if u, _ := ka.f.Get("alice"); u.Keys[0].SignCount != 3 {
		t.Errorf("stored counter %d after refusals, want 3", u.Keys[0].SignCount)
	}
	// A key without a counter (always 0) is accepted every time.
	zero := ka.enrol(t, "no counter")
	for range 2 {
		zero.count = 0
		id, ch := ka.begin(t, home)
		if _, _, err := ka.a.LoginKey("alice", pw, id, testRP, zero.assertAt(ch, testRP.Origin, testRP.ID), home); err != nil {
			t.Errorf("counter-less key: %v", err)
		}
	}
}

func TestKeyLoginRefusals(t *testing.T) {
	ka := newKeyAuth(t, Limits{Attempts: 100, SourceAttempts: 100, CodeAttempts: 100})
	bob := addUser(t, ka.f, "bob", Viewer)
	bobKey := newSoftKey(t)
	bs := Session{User: "bob", Role: Viewer, Generation: bob.Generation}
	id, opts, err := ka.a.BeginAddKey(bs, "bob-session", testRP)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ka.a.FinishAddKey(bs, "bob-session", id, testRP, "bob's", bobKey.register(opts, testRP.Origin, testRP.ID)); err != nil {
		t.Fatal(err)
	}
	// A stranger's key with the right credential ID and user handle: the
	// signature does not verify.
	forged := newSoftKey(t)
	forged.id, forged.handle = ka.key.id, ka.key.handle
	for _, tc := range []struct {
		name     string
		user, pw string
		key      *softKey
	}{
		{"wrong password, right key", "alice", "wrong horse battery", ka.key},
		{"bob's key for alice", "alice", pw, bobKey},
		{"forged key", "alice", pw, forged},
		{"alice's key for bob", "bob", pw, ka.key},
		{"unknown user", "mallory", pw, ka.key},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ch := ka.begin(t, home)
			tc.key.count++
			if _, _, err := ka.a.LoginKey(tc.user, tc.pw, id, testRP, tc.key.assertAt(ch, testRP.Origin, testRP.ID), home); !errors.Is(err, ErrLogin) {
				t.Errorf("LoginKey = %v, want ErrLogin", err)
			}
		})
	}
	// Garbage instead of an assertion, and no ceremony at all.
	id, _ = ka.begin(t, home)
	if _, _, err := ka.a.LoginKey("alice", pw, id, testRP, []byte(`{"id":`), home); !errors.Is(err, ErrLogin) {
		t.Errorf("garbage: %v", err)
	}
	if _, _, err := ka.a.LoginKey("alice", pw, "nope", testRP, ka.key.assertAt("x", testRP.Origin, testRP.ID), home); !errors.Is(err, ErrLogin) {
		t.Errorf("no ceremony: %v", err)
	}
	// User verification is preferred, not required: a touch-only key works.
	ka.key.flags = flagUP
	if _, _, err := ka.login(t, ka.key, home); err != nil {
		t.Errorf("key without user verification: %v", err)
	}
	// No user presence: refused.
	ka.key.flags = 0
	if _, _, err := ka.login(t, ka.key, home); !errors.Is(err, ErrLogin) {
		t.Errorf("assertion without user presence: %v", err)
	}
}

func TestKeyFailuresLockLikeTOTP(t *testing.T) {
	ka := newKeyAuth(t, Limits{Attempts: 100, SourceAttempts: 100, CodeAttempts: 4, Window: time.Minute, Lockout: 10 * time.Minute})
	forged := newSoftKey(t)
	forged.id, forged.handle = ka.key.id, ka.key.handle
	// Someone with the password tries a wrong key from four addresses.
	for i := range 4 {
		src := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		if _, _, err := ka.login(t, forged, src); !errors.Is(err, ErrLogin) {
			t.Fatalf("forged assertion %d: %v", i, err)
		}
	}
	// Now the right key and the right TOTP code are refused alike.
	if _, _, err := ka.login(t, ka.key, home); !errors.Is(err, ErrLogin) {
		t.Errorf("right key during the lock: %v", err)
	}
	if _, err := ka.a.Login("alice", pw, code(t, ka.u, ka.c.Now()), home); !errors.Is(err, ErrLogin) {
		t.Errorf("right code during the lock: %v", err)
	}
	ka.c.Add(11 * time.Minute)
	if _, _, err := ka.login(t, ka.key, home); err != nil {
		t.Errorf("after the lock: %v", err)
	}
	// Failed assertions count per name and source like wrong passwords.
	ka2 := newKeyAuth(t, Limits{Attempts: 3, SourceAttempts: 100, CodeAttempts: 100})
	for range 3 {
		ka2.login(t, forged, home)
	}
	if _, _, err := ka2.login(t, ka2.key, home); !errors.Is(err, ErrLocked) {
		t.Errorf("after 3 failures from one source: %v, want ErrLocked", err)
	}
}

func TestRemoveKeyNeedsFreshSecondFactor(t *testing.T) {
	ka := newKeyAuth(t, Limits{CodeAttempts: 3, Window: time.Minute, Lockout: 10 * time.Minute})
	spare := ka.enrol(t, "spare")
	// A session that logged in with the first key.
	ss := NewSessions(ka.f, time.Hour, 12*time.Hour, ka.c.Now)
	_, k, err := ka.login(t, ka.key, home)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := ss.Create(ka.u, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	// No proof, a wrong code: refused, the key stays.
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, ka.key.id, Proof{}); !errors.Is(err, ErrSecondFactor) {
		t.Errorf("no proof: %v", err)
	}
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, ka.key.id, Proof{Code: "12345x"}); !errors.Is(err, ErrSecondFactor) {
		t.Errorf("wrong code: %v", err)
	}
	// A fresh TOTP code removes the spare key.
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, spare.id, Proof{Code: code(t, ka.u, ka.c.Now())}); err != nil {
		t.Fatalf("remove with a code: %v", err)
	}
	// The same code again: used.
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, ka.key.id, Proof{Code: code(t, ka.u, ka.c.Now())}); !errors.Is(err, ErrSecondFactor) {
		t.Errorf("replayed code: %v", err)
	}
	// Now locked (3 failures): even a good proof is refused.
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, ka.key.id, Proof{Code: code(t, ka.u, ka.c.Now().Add(30*time.Second))}); !errors.Is(err, ErrLocked) {
		t.Errorf("during the lock: %v", err)
	}
	ka.c.Add(11 * time.Minute)
	// A key assertion bound to another session is refused.
	id, opts, err := ka.a.BeginReauth(ka.sess, bindAlice, testRP)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Response.AllowedCredentials) != 1 {
		t.Errorf("reauth allows %d keys, want 1", len(opts.Response.AllowedCredentials))
	}
	if _, err := ka.a.RemoveKey(ka.sess, "other session", testRP, ka.key.id, Proof{Ceremony: id, Credential: ka.key.assert(opts, testRP.Origin, testRP.ID)}); !errors.Is(err, ErrSecondFactor) {
		t.Errorf("reauth from another session: %v", err)
	}
	// The key's own fresh assertion removes it, and the session that
	// logged in with it ends.
	if _, err := ss.Get(tok, true); err != nil {
		t.Fatalf("session before removal: %v", err)
	}
	id, opts, _ = ka.a.BeginReauth(ka.sess, bindAlice, testRP)
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, ka.key.id, Proof{Ceremony: id, Credential: ka.key.assert(opts, testRP.Origin, testRP.ID)}); err != nil {
		t.Fatalf("remove with the key: %v", err)
	}
	if _, err := ss.Get(tok, true); !errors.Is(err, ErrNoSession) {
		t.Errorf("session of the removed key: %v", err)
	}
	if u, _ := ka.f.Get("alice"); len(u.Keys) != 0 {
		t.Errorf("%d keys left", len(u.Keys))
	}
	if _, err := ka.a.RemoveKey(ka.sess, bindAlice, testRP, ka.key.id, Proof{}); !errors.Is(err, ErrNoKey) {
		t.Errorf("removing a removed key: %v", err)
	}
}

func TestResetMFAClearsKeysAndFormats(t *testing.T) {
	ka := newKeyAuth(t, Limits{})
	if _, err := ka.f.ResetMFA("alice", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	u, _ := ka.f.Get("alice")
	if len(u.Keys) != 0 || len(u.Handle) != 0 {
		t.Errorf("after reset-mfa: %d keys, handle %x", len(u.Keys), u.Handle)
	}
	if _, _, err := ka.login(t, ka.key, home); !errors.Is(err, ErrLogin) {
		t.Errorf("old key after reset-mfa: %v", err)
	}
	// A format-1 file (no keys) loads; a later format is refused.
	dir := t.TempDir()
	v1 := `{"version":1,"users":[{"name":"old","role":"admin","hash":"x","totp":"ABC","last_step":0,"generation":1,"created":"2026-01-01T00:00:00Z"}]}`
	if err := os.WriteFile(dir+"/users.json", []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	if u, err := Open(dir).Get("old"); err != nil || u.Role != Admin || len(u.Keys) != 0 {
		t.Errorf("format 1: %+v %v", u, err)
	}
	if err := os.WriteFile(dir+"/users.json", []byte(strings.Replace(v1, `"version":1`, `"version":3`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir).Get("old"); err == nil || !strings.Contains(err.Error(), "format 3") {
		t.Errorf("format 3: %v", err)
	}
}

func TestCeremoniesBounded(t *testing.T) {
	c := &clock{t: t0}
	cs := newCeremonies(c.Now)
	// One address asking again and again keeps only its newest few.
	var ids []string
	for range 3 * maxPerBind {
		id, err := cs.put(&ceremony{kind: kindLogin, bind: "login\x00203.0.113.9"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		c.Add(time.Millisecond)
	}
	if cs.len() != maxPerBind {
		t.Errorf("one address holds %d ceremonies, want %d", cs.len(), maxPerBind)
	}
	if _, err := cs.take(ids[len(ids)-1], kindLogin, "login\x00203.0.113.9", RP{}); err != nil {
		t.Errorf("the newest was evicted: %v", err)
	}
	if _, err := cs.take(ids[0], kindLogin, "login\x00203.0.113.9", RP{}); err == nil {
		t.Error("the oldest was kept")
	}
	// Many addresses: the table is bounded, then refuses until some expire.
	for i := range maxCeremonies - cs.len() {
		if _, err := cs.put(&ceremony{kind: kindLogin, bind: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.put(&ceremony{kind: kindLogin, bind: "one more"}); !errors.Is(err, ErrBusy) {
		t.Errorf("past the bound: %v", err)
	}
	c.Add(CeremonyTTL)
	if _, err := cs.put(&ceremony{kind: kindLogin, bind: "later"}); err != nil || cs.len() != 1 {
		t.Errorf("after expiry: %v, %d held", err, cs.len())
	}
}

// FuzzKeyLoginAnswer feeds arbitrary bytes as the browser's answer to a
// key login: never a panic, never a login.
func FuzzKeyLoginAnswer(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":"","userHandle":"AA"}}`))
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uZ2V0In0","authenticatorData":"SZYN5YgOjGh0NBcPZHZgW4_krrmihjLHmVzzuoMdl2MFAAAAAQ","signature":"MEUCIQ","userHandle":"AA"}}`))
	f.Add([]byte("\x00\xff"))
	ka := newKeyAuth(f, Limits{Attempts: 1 << 30, SourceAttempts: 1 << 30, CodeAttempts: 1 << 30})
	f.Fuzz(func(t *testing.T, answer []byte) {
		id, _, err := ka.a.BeginKeyLogin(testRP, home)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ka.a.LoginKey("alice", pw, id, testRP, answer, home); !errors.Is(err, ErrLogin) {
			t.Fatalf("LoginKey(%q) = %v, want ErrLogin", answer, err)
		}
	})
}

// BenchmarkKeyLogin is one whole key login after the password: challenge,
// assertion verified (ECDSA P-256), counter written to the file (fsync).
// bcrypt runs at its minimum cost here; in production it dominates.
func BenchmarkKeyLogin(b *testing.B) {
	ka := newKeyAuth(b, Limits{})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ka.login(b, ka.key, home); err != nil {
			b.Fatal(err)
		}
	}
}
