package token

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// RFC 6238 Appendix B: the SHA-1 test secret "12345678901234567890".
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCodeRFC6238Vectors(t *testing.T) {
	// RFC 6238 Appendix B, SHA-1 column, last 6 of the 8 digits.
	for unix, want := range map[int64]string{59: "287082", 1111111109: "081804", 1234567890: "005924", 2000000000: "279037"} {
		got, err := Code(rfcSecret, time.Unix(unix, 0))
		if err != nil || got != want {
			t.Errorf("Code at %d = %q, %v; want %q", unix, got, err, want)
		}
	}
}

func TestVerify(t *testing.T) {
	start := time.Unix(1_800_000_000, 0) // on a step boundary
	codeAt := func(t *testing.T, d time.Duration) string {
		t.Helper()
		c, err := Code(rfcSecret, start.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("valid then replayed", func(t *testing.T) {
		clk := &fakeClock{t: start.Add(5 * time.Second)}
		v := NewVerifier(Options{Now: clk.Now})
		c := codeAt(t, 0)
		if err := v.Verify("2001", rfcSecret, c); err != nil {
			t.Fatalf("valid code: %v", err)
		}
		if err := v.Verify("2001", rfcSecret, c); !errors.Is(err, ErrReplayed) {
			t.Errorf("replay in the same step: %v", err)
		}
		clk.Add(40 * time.Second) // next step; the code is still within skew
		if err := v.Verify("2001", rfcSecret, c); !errors.Is(err, ErrReplayed) {
			t.Errorf("replay in the next step: %v", err)
		}
		if err := v.Verify("2001", rfcSecret, " "+codeAt(t, 30*time.Second)+"\t"); err != nil {
			t.Errorf("next step's code (padded header): %v", err)
		}
	})
	t.Run("older code after newer is rejected", func(t *testing.T) {
		clk := &fakeClock{t: start.Add(35 * time.Second)}
		v := NewVerifier(Options{Now: clk.Now})
		if err := v.Verify("2001", rfcSecret, codeAt(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify("2001", rfcSecret, codeAt(t, 0)); !errors.Is(err, ErrReplayed) {
			t.Errorf("previous step's unused code after the current one: %v", err)
		}
	})
	t.Run("skew one step each side", func(t *testing.T) {
		clk := &fakeClock{t: start.Add(30 * time.Second)}
		v := NewVerifier(Options{Now: clk.Now})
		if err := v.Verify("a", rfcSecret, codeAt(t, 0)); err != nil {
			t.Errorf("code one step old: %v", err)
		}
		if err := v.Verify("b", rfcSecret, codeAt(t, 60*time.Second)); err != nil {
			t.Errorf("code one step ahead: %v", err)
		}
	})
	t.Run("expired and too early", func(t *testing.T) {
		clk := &fakeClock{t: start.Add(61 * time.Second)}
		v := NewVerifier(Options{Now: clk.Now})
		if err := v.Verify("2001", rfcSecret, codeAt(t, 0)); !errors.Is(err, ErrWrong) {
			t.Errorf("code two steps old: %v", err)
		}
		if err := v.Verify("2001", rfcSecret, codeAt(t, 120*time.Second)); !errors.Is(err, ErrWrong) {
			t.Errorf("code two steps ahead: %v", err)
		}
	})
	t.Run("no skew", func(t *testing.T) {
		clk := &fakeClock{t: start.Add(30 * time.Second)}
		v := NewVerifier(Options{Now: clk.Now, Skew: -1})
		if err := v.Verify("2001", rfcSecret, codeAt(t, 0)); !errors.Is(err, ErrWrong) {
			t.Errorf("previous step with skew off: %v", err)
		}
		if err := v.Verify("2001", rfcSecret, codeAt(t, 30*time.Second)); err != nil {
			t.Errorf("current step with skew off: %v", err)
		}
	})
	t.Run("wrong and malformed", func(t *testing.T) {
		clk := &fakeClock{t: start}
		v := NewVerifier(Options{Now: clk.Now})
		good := codeAt(t, 0)
		wrong := fmt.Sprintf("%06d", (atoi(good)+1)%1000000)
		for in, want := range map[string]error{
			"":                        ErrMissing,
			"   ":                     ErrMissing,
			wrong:                     ErrWrong,
			"12345":                   ErrMalformed,
			"1234567":                 ErrMalformed,
			"12a456":                  ErrMalformed,
			"１２３４５６":                  ErrMalformed, // full-width digits
			good + "\x00":             ErrMalformed,
			strings.Repeat("1", 4096): ErrMalformed,
		} {
			if err := v.Verify("2001", rfcSecret, in); !errors.Is(err, want) {
				t.Errorf("Verify(%q) = %v, want %v", in, err, want)
			}
		}
		// Failures do not burn the code.
		if err := v.Verify("2001", rfcSecret, good); err != nil {
			t.Errorf("good code after failures: %v", err)
		}
	})
	t.Run("another account's code", func(t *testing.T) {
		clk := &fakeClock{t: start}
		v := NewVerifier(Options{Now: clk.Now})
		other, err := NewKey("tollguard", "2002", bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
		if err != nil {
			t.Fatal(err)
		}
		otherCode, err := Code(other.Secret, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if otherCode == codeAt(t, 0) {
			t.Skip("codes collide by chance")
		}
		if err := v.Verify("2001", rfcSecret, otherCode); !errors.Is(err, ErrWrong) {
			t.Errorf("2002's code for 2001: %v", err)
		}
		// Replay protection is per account: the same code for another
		// account with the same secret is that account's own first use.
		if err := v.Verify("2001", rfcSecret, codeAt(t, 0)); err != nil {
			t.Fatal(err)
		}
		if err := v.Verify("2003", rfcSecret, codeAt(t, 0)); err != nil {
			t.Errorf("first use for 2003: %v", err)
		}
	})
	t.Run("bad secret", func(t *testing.T) {
		v := NewVerifier(Options{Now: func() time.Time { return start }})
		for _, s := range []string{"", "not base32!", "GEZDGNBV"} {
			if err := v.Verify("2001", s, "123456"); err == nil || errors.Is(err, ErrWrong) {
				t.Errorf("secret %q: %v", s, err)
			}
		}
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestVerifierBounded(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	clk := &fakeClock{t: start}
	v := NewVerifier(Options{Now: clk.Now, MaxAccounts: 3})
	code, err := Code(rfcSecret, start)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"a", "b", "c"} {
		if err := v.Verify(a, rfcSecret, code); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Verify("d", rfcSecret, code); !errors.Is(err, ErrFull) {
		t.Errorf("fourth live account: %v", err)
	}
	if err := v.Verify("a", rfcSecret, code); !errors.Is(err, ErrReplayed) {
		t.Errorf("replay while full: %v", err)
	}
	clk.Add(2 * Period) // a, b, c's steps leave the window
	code2, err := Code(rfcSecret, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify("d", rfcSecret, code2); err != nil {
		t.Errorf("after expiry: %v", err)
	}
	if v.Len() != 1 {
		t.Errorf("Len = %d after sweep, want 1", v.Len())
	}
}

func TestNewKey(t *testing.T) {
	k, err := NewKey("tollguard", "2001@pbx.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSecret(k.Secret); err != nil {
		t.Errorf("generated secret: %v", err)
	}
	u, err := url.Parse(k.URI)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || q.Get("secret") != k.Secret || q.Get("issuer") != "tollguard" ||
		q.Get("period") != "30" || q.Get("digits") != "6" || q.Get("algorithm") != "SHA1" ||
		!strings.Contains(u.Path, "2001@pbx.example.com") {
		t.Errorf("URI = %s", k.URI)
	}
	k2, err := NewKey("tollguard", "2001@pbx.example.com", nil)
	if err != nil || k2.Secret == k.Secret {
		t.Errorf("two keys share a secret: %v", err)
	}
	// The key verifies the code an authenticator computes from it.
	now := time.Unix(1_800_000_000, 0)
	c, err := Code(k.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := NewVerifier(Options{Now: func() time.Time { return now }}).Verify("2001", k.Secret, c); err != nil {
		t.Errorf("own code: %v", err)
	}
	if _, err := NewKey("", "2001", nil); err == nil {
		t.Error("key without issuer")
	}
	if _, err := NewKey("tollguard", " ", nil); err == nil {
		t.Error("key without account")
	}
	if _, err := NewKey("tollguard", "2001", bytes.NewReader(nil)); err == nil {
		t.Error("key from an empty random source")
	}
}

func TestConcurrentSingleUse(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	v := NewVerifier(Options{Now: func() time.Time { return start }})
	code, err := Code(rfcSecret, start)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 16 {
		wg.Go(func() {
			if v.Verify("2001", rfcSecret, code) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 1 {
		t.Errorf("code accepted %d times by concurrent calls, want 1", ok)
	}
}
