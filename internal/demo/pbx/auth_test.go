package pbx

import (
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

func testAuthority(now *time.Time) *authority {
	return newAuthority("demo.test", map[string]string{"1001": "Secret-1001"}, 30*time.Second,
		func() time.Time { return *now })
}

// credentials answers a fresh challenge from a for user/password.
func credentials(t testing.TB, a *authority, user, password, method string) string {
	t.Helper()
	chal, err := digest.ParseChallenge(a.challenge(false))
	if err != nil {
		t.Fatal(err)
	}
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: "sip:demo.test", Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

func TestVerify(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := testAuthority(&now)
	good := credentials(t, a, "1001", "Secret-1001", "REGISTER")
	tests := []struct {
		name    string
		header  string
		method  string
		age     time.Duration
		want    authResult
		failure bool
	}{
		{name: "no header", header: "", method: "REGISTER", want: authMissing},
		{name: "good", header: good, method: "REGISTER", want: authOK},
		{name: "good but aged nonce", header: good, method: "REGISTER", age: time.Minute, want: authStale},
		{name: "wrong password", header: credentials(t, a, "1001", "secret", "REGISTER"), method: "REGISTER", want: authWrongPassword, failure: true},
		{name: "wrong password and aged nonce", header: credentials(t, a, "1001", "secret", "REGISTER"), method: "REGISTER", age: time.Minute, want: authWrongPassword, failure: true},
		{name: "unknown user", header: credentials(t, a, "9999", "x", "REGISTER"), method: "REGISTER", want: authUnknownUser, failure: true},
		{name: "method mismatch", header: good, method: "INVITE", want: authWrongPassword, failure: true},
		{name: "forged nonce", header: strings.Replace(good, `nonce="`, `nonce="00`, 1), method: "REGISTER", want: authBadNonce},
		{name: "not digest", header: "Basic Zm9vOmJhcg==", method: "REGISTER", want: authMalformed, failure: true},
		{name: "realm mismatch", header: strings.Replace(good, `realm="demo.test"`, `realm="other"`, 1), method: "REGISTER", want: authWrongPassword, failure: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := now
			now = now.Add(tc.age)
			defer func() { now = saved }()
			_, got := a.verify(tc.header, tc.method)
			if got != tc.want || got.failure() != tc.failure {
				t.Errorf("verify = %d (failure %v), want %d (failure %v)", got, got.failure(), tc.want, tc.failure)
			}
		})
	}
}

func TestChallengeStale(t *testing.T) {
	now := time.Now()
	a := testAuthority(&now)
	for _, stale := range []bool{false, true} {
		chal, err := digest.ParseChallenge(a.challenge(stale))
		if err != nil {
			t.Fatal(err)
		}
		if chal.Stale != stale || chal.Realm != "demo.test" || chal.Algorithm != "MD5" || !chal.SupportsQOP("auth") {
			t.Errorf("challenge(%v) = %+v", stale, chal)
		}
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := testAuthority(&now)
	f.Add(credentials(f, a, "1001", "Secret-1001", "REGISTER"), "REGISTER")
	f.Add(`Digest username="1001", realm="demo.test", nonce="zz", uri="sip:x", response="00"`, "INVITE")
	f.Add("Digest ,,,=", "REGISTER")
	f.Fuzz(func(t *testing.T, header, method string) {
		user, res := a.verify(header, method)
		if res == authOK && user != "1001" {
			t.Fatalf("authenticated unknown user %q", user)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	now := time.Now()
	a := testAuthority(&now)
	h := credentials(b, a, "1001", "Secret-1001", "REGISTER")
	b.ReportAllocs()
	for b.Loop() {
		if _, r := a.verify(h, "REGISTER"); r != authOK {
			b.Fatal(r)
		}
	}
}
