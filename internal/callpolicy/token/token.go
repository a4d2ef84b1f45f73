// Package token implements one-time call tokens: an account listed for
// tokens must present a TOTP code (RFC 6238) with each call, and each code
// is accepted once. The package generates secrets and otpauth:// URIs, and
// verifies codes with a bounded memory of what was accepted. It does no
// I/O; the clock is injected.
package token

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The parameters authenticator apps assume (RFC 6238 §4 defaults, the
// Google Authenticator key URI format): HMAC-SHA1, 6 digits, 30 s steps.
const (
	Period = 30 * time.Second
	Digits = 6
	// SecretBytes is the secret length generated: 160 bits, RFC 4226 §4's
	// recommendation.
	SecretBytes = 20
	// minSecretBytes is RFC 4226 §4's minimum, 128 bits.
	minSecretBytes = 16
)

// Verification errors. Callers answer all of them the same way (a 403);
// the distinction is for events.
var (
	ErrMissing   = errors.New("no call token")
	ErrMalformed = errors.New("call token is not 6 digits")
	ErrWrong     = errors.New("call token does not match")
	ErrReplayed  = errors.New("call token already used")
	ErrFull      = errors.New("too many accounts with recent tokens")
)

// Key is a new secret for an account.
type Key struct {
	Account string
	// Secret is base32 without padding, as authenticator apps take it.
	Secret string
	// URI is the otpauth://totp/ URI to show as a QR code.
	URI string
}

// NewKey generates a secret for account under issuer ("tollguard") from
// random (crypto/rand.Reader when nil).
func NewKey(issuer, account string, random io.Reader) (Key, error) {
	if strings.TrimSpace(issuer) == "" || strings.TrimSpace(account) == "" {
		return Key{}, errors.New("generating a call token key: issuer and account are required")
	}
	if random == nil {
		random = rand.Reader
	}
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(Period / time.Second),
		SecretSize: SecretBytes, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1, Rand: random,
	})
	if err != nil {
		return Key{}, fmt.Errorf("generating a call token key for %q: %w", account, err)
	}
	return Key{Account: account, Secret: k.Secret(), URI: k.URL()}, nil
}

// CheckSecret reports whether secret is base32 of at least 128 bits.
func CheckSecret(secret string) error {
	_, err := decodeSecret(secret)
	return err
}

func decodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.TrimSpace(secret))
	s = strings.TrimRight(s, "=")
	b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
	if err != nil {
		return nil, errors.New("call token secret is not base32")
	}
	if len(b) < minSecretBytes {
		return nil, fmt.Errorf("call token secret has %d bits, want at least 128", len(b)*8)
	}
	return b, nil
}

// Code returns the code for secret at t, as an authenticator shows it.
func Code(secret string, t time.Time) (string, error) {
	if err := CheckSecret(secret); err != nil {
		return "", err
	}
	return codeAt(secret, step(t))
}

func codeAt(secret string, s int64) (string, error) {
	if s < 0 {
		return "", errors.New("time before 1970")
	}
	return hotp.GenerateCodeCustom(secret, uint64(s), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

func step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Verifier checks codes and remembers, per account, the last time step it
// accepted: a code is accepted only for a step after that one, so each code
// is used once (RFC 6238 §5.2) and an older code cannot follow a newer one.
// An account with tokens can place one call per 30 s step. Memory is bounded
// by MaxAccounts; entries older than the skew window are dropped, since no
// code for them can verify any more. Verifier is safe for concurrent use.
type Verifier struct {
	now  func() time.Time
	skew int64
	max  int

	mu   sync.Mutex
	last map[string]int64
}

// Options configure a Verifier.
type Options struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Skew is how many steps either side of now are accepted; 0 means 1
	// (±30 s for clock drift), negative means none.
	Skew int
	// MaxAccounts bounds the accounts remembered at once; 0 means 100,000.
	MaxAccounts int
}

// NewVerifier returns a Verifier.
func NewVerifier(o Options) *Verifier {
	v := &Verifier{now: o.Now, skew: int64(o.Skew), max: o.MaxAccounts, last: map[string]int64{}}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.skew == 0:
		v.skew = 1
	case v.skew < 0:
		v.skew = 0
	}
	if v.max <= 0 {
		v.max = 100_000
	}
	return v
}

// Verify checks header, the value of the configured token header, against
// account's secret. It returns nil once per code; ErrMissing, ErrMalformed,
// ErrWrong, ErrReplayed or ErrFull otherwise, or an error about the secret.
// The comparison runs over every step in the window in constant time.
func (v *Verifier) Verify(account, secret, header string) error {
	return v.VerifyAt(account, secret, header, v.now())
}

// VerifyAt is Verify at t: the engine passes the event's time, so replays
// with a fake clock verify the same way.
func (v *Verifier) VerifyAt(account, secret, header string, t time.Time) error {
	code := strings.TrimSpace(header)
	if code == "" {
		return ErrMissing
	}
	if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return ErrMalformed
	}
	if err := CheckSecret(secret); err != nil {
		return err
	}
	now := step(t)
	matched := int64(-1)
	for s := now - v.skew; s <= now+v.skew; s++ {
		want, err := codeAt(secret, s)
		if err != nil {
			return fmt.Errorf("computing a call token: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = s
		}
	}
	if matched < 0 {
		return ErrWrong
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if last, ok := v.last[account]; ok && matched <= last {
		return ErrReplayed
	}
	if _, ok := v.last[account]; !ok && len(v.last) >= v.max {
		v.sweep(now)
		if len(v.last) >= v.max {
			return ErrFull
		}
	}
	if _, ok := v.last[account]; ok {
		v.last[account] = matched
	} else {
		// Clone: account is often a slice of the SIP message.
		v.last[strings.Clone(account)] = matched
	}
	return nil
}

// sweep drops accounts whose last step is outside every window that can
// still verify. Called with mu held.
func (v *Verifier) sweep(now int64) {
	for a, s := range v.last {
		if s < now-v.skew {
			delete(v.last, a)
		}
	}
}

// Len returns the accounts remembered.
func (v *Verifier) Len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.last)
}
