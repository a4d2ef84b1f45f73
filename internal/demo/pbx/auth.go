package pbx

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// authResult is the outcome of checking one Authorization or
// Proxy-Authorization header against the account table.
type authResult int

const (
	// authMissing: no credentials; answer with a fresh challenge.
	authMissing authResult = iota
	// authOK: credentials match and the nonce is fresh.
	authOK
	// authStale: the digest is right but the nonce is too old; challenge
	// again with stale=true (RFC 2617 §3.2.1).
	authStale
	// authBadNonce: the nonce was not issued by us; challenge again without
	// counting a failure.
	authBadNonce
	// authUnknownUser: the username is not in the account table.
	authUnknownUser
	// authWrongPassword: the digest response does not match.
	authWrongPassword
	// authMalformed: the header could not be parsed.
	authMalformed
)

// failure reports whether the result is a real authentication failure in the
// sense of DESIGN.md decision 2 (credentials were sent and were wrong).
func (r authResult) failure() bool {
	return r == authUnknownUser || r == authWrongPassword || r == authMalformed
}

// errNonce is returned by checkNonce for nonces this server did not issue.
var errNonce = errors.New("nonce not issued here")

// authority issues and verifies MD5 digest challenges (RFC 2617 §3.2.1,
// used by SIP per RFC 3261 §22.4; RFC 8760 keeps MD5 as the default).
// Nonces are self-validating: a timestamp plus an HMAC over it, so no
// per-nonce state is kept and an attacker cannot grow memory.
type authority struct {
	realm    string
	accounts map[string]string
	maxAge   time.Duration
	secret   [32]byte
	now      func() time.Time
}

func newAuthority(realm string, accounts map[string]string, maxAge time.Duration, now func() time.Time) *authority {
	a := &authority{realm: realm, accounts: accounts, maxAge: maxAge, now: now}
	if _, err := rand.Read(a.secret[:]); err != nil {
		panic(fmt.Sprintf("pbx: reading random secret: %v", err))
	}
	return a
}

// nonce returns a fresh nonce: 16 hex digits of issue time (unix nanos)
// followed by 16 hex digits of HMAC-SHA256 over them.
func (a *authority) nonce() string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(a.now().UnixNano()))
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(a.mac(ts[:]))
}

func (a *authority) mac(ts []byte) []byte {
	m := hmac.New(sha256.New, a.secret[:])
	m.Write(ts)
	return m.Sum(nil)[:8]
}

// checkNonce returns the age of a nonce issued by this authority.
func (a *authority) checkNonce(n string) (time.Duration, error) {
	raw, err := hex.DecodeString(n)
	if err != nil || len(raw) != 16 {
		return 0, errNonce
	}
	if !hmac.Equal(raw[8:], a.mac(raw[:8])) {
		return 0, errNonce
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	return a.now().Sub(issued), nil
}

// challenge returns the value of a WWW-Authenticate or Proxy-Authenticate
// header (RFC 3261 §22.4).
func (a *authority) challenge(stale bool) string {
	c := digest.Challenge{
		Realm:     a.realm,
		Nonce:     a.nonce(),
		Algorithm: "MD5",
		QOP:       []string{"auth"},
		Stale:     stale,
	}
	return c.String()
}

// verify checks the credentials in header (the value of Authorization or
// Proxy-Authorization; empty when absent) for method. It returns the
// username the request claimed, if any.
func (a *authority) verify(header, method string) (string, authResult) {
	if header == "" {
		return "", authMissing
	}
	cred, err := digest.ParseCredentials(header)
	if err != nil || cred.Username == "" || cred.Nonce == "" || cred.Response == "" {
		return "", authMalformed
	}
	password, known := a.accounts[cred.Username]
	if !known {
		return cred.Username, authUnknownUser
	}
	age, err := a.checkNonce(cred.Nonce)
	if err != nil {
		return cred.Username, authBadNonce
	}
	if cred.Realm != a.realm {
		return cred.Username, authWrongPassword
	}
	want := expectedResponse(cred, method, password)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(cred.Response)), []byte(want)) != 1 {
		return cred.Username, authWrongPassword
	}
	if age > a.maxAge || age < 0 {
		return cred.Username, authStale
	}
	return cred.Username, authOK
}

// expectedResponse computes the RFC 2617 §3.2.2.1 request-digest with MD5.
func expectedResponse(c *digest.Credentials, method, password string) string {
	ha1 := md5hex(c.Username + ":" + c.Realm + ":" + password)
	ha2 := md5hex(method + ":" + c.URI)
	if c.QOP == "" {
		return md5hex(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	return md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, c.Nonce, c.Nc, c.Cnonce, c.QOP, ha2))
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// credentialUser returns the username of a digest credentials value, or "".
func credentialUser(v string) string {
	c, err := digest.ParseCredentials(v)
	if err != nil {
		return ""
	}
	return c.Username
}
