package users

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"
)

// bcryptCost is the work factor of password hashes (about 60 ms on a
// server core: slow for a guesser, unnoticeable at a login; OWASP's floor).
const bcryptCost = 10

// MinPasswordLen is the shortest console password accepted.
const MinPasswordLen = 12

// maxPasswordLen is bcrypt's input limit.
const maxPasswordLen = 72

// HashPassword returns the bcrypt hash of password, refusing one shorter
// than MinPasswordLen or longer than bcrypt's 72 bytes.
func HashPassword(password string) (string, error) {
	return hashPassword(password, bcryptCost)
}

func hashPassword(password string, cost int) (string, error) {
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	}
	if len(password) > maxPasswordLen {
		return "", fmt.Errorf("password must be at most %d bytes", maxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(h), nil
}

// checkPassword compares password with hash. An empty hash (no such
// user) is compared with dummy, a hash of the same cost, and always fails,
// so a login for an unknown name takes as long as one for a known name.
func checkPassword(hash, password string, dummy []byte) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// TOTP parameters: what authenticator apps expect.
const (
	totpPeriod = 30
	totpSkew   = 1
	secretSize = 20
	issuer     = "tollguard"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random base32 TOTP secret (160 bits).
func NewSecret() (string, error) {
	raw := make([]byte, secretSize)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating TOTP secret: %w", err)
	}
	return b32.EncodeToString(raw), nil
}

// OTPAuthURI returns the otpauth:// URI an authenticator app enrols from.
func OTPAuthURI(u User) string {
	v := url.Values{}
	v.Set("secret", u.TOTP)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	return "otpauth://totp/" + url.PathEscape(issuer+":"+u.Name) + "?" + v.Encode()
}

// Code returns the TOTP code of secret at t (for tests and tools).
func Code(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, validateOpts)
}

var validateOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

var errCodeUsed = errors.New("TOTP code already used")

// matchStep returns the time step whose code equals code, checking the
// current step and one either side (clock skew), newest first, and only
// steps after last. ok is false when none matches.
func matchStep(secret, code string, now time.Time, last int64) (step int64, ok bool) {
	if len(code) != 6 {
		return 0, false
	}
	cur := now.Unix() / totpPeriod
	for s := cur + totpSkew; s >= cur-totpSkew; s-- {
		if s <= last {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), validateOpts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return s, true
		}
	}
	return 0, false
}
