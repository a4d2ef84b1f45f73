package users

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
)

// RP is the WebAuthn relying party a ceremony is bound to: the RP ID (a
// domain name, never an IP address) and the one origin the console's page
// was loaded from. The caller derives it from its configuration, not from
// what a request claims (see internal/web).
type RP struct {
	ID     string
	Origin string
}

// CeremonyTTL is how long a WebAuthn challenge may be answered.
const CeremonyTTL = 2 * time.Minute

// maxCeremonies bounds the challenges held: past it, expired ones are
// swept, and if none has expired a new ceremony is refused (ErrBusy).
const maxCeremonies = 10000

// maxPerBind bounds the challenges pending for one source address or
// session: a new one replaces the oldest, so one address cannot fill the
// table and a user who retries is never refused.
const maxPerBind = 8

// ErrBusy is returned when too many WebAuthn ceremonies are pending.
var ErrBusy = errors.New("too many security-key requests pending; try again in a minute")

// errCeremony is the one answer to a missing, used, expired, foreign or
// mismatched ceremony.
var errCeremony = errors.New("no such security-key challenge (used, expired or not yours)")

type ceremonyKind uint8

const (
	kindLogin    ceremonyKind = iota + 1 // after the password, instead of TOTP
	kindRegister                         // adding a key to a logged-in user
	kindReauth                           // a fresh second factor (removing a key)
)

// ceremony is one pending challenge, kept server-side only.
type ceremony struct {
	kind ceremonyKind
	// bind is what the finishing request must present again: the source
	// address of a login attempt, or the session of a logged-in user.
	bind string
	// user and gen are the user a register or reauth ceremony is for.
	user    string
	gen     int64
	rp      RP
	data    webauthn.SessionData
	expires time.Time
}

// ceremonies holds pending challenges. Each is taken (deleted) by the
// first finishing request, whatever its outcome, so a challenge is
// answered at most once.
type ceremonies struct {
	mu  sync.Mutex
	m   map[string]*ceremony
	now func() time.Time
}

func newCeremonies(now func() time.Time) *ceremonies {
	return &ceremonies{m: map[string]*ceremony{}, now: now}
}

// put stores c and returns its random ID.
func (cs *ceremonies) put(c *ceremony) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b)
	now := cs.now()
	c.expires = now.Add(CeremonyTTL)
	// The library's own expiry reads the wall clock; ours is the injected
	// clock above, so the library's is left off.
	c.data.Expires = time.Time{}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	n, oldest := 0, ""
	for k, v := range cs.m {
		if v.bind == c.bind {
			n++
			if oldest == "" || v.expires.Before(cs.m[oldest].expires) {
				oldest = k
			}
		}
	}
	if n >= maxPerBind {
		delete(cs.m, oldest)
	}
	if len(cs.m) >= maxCeremonies {
		for k, v := range cs.m {
			if !now.Before(v.expires) {
				delete(cs.m, k)
			}
		}
		if len(cs.m) >= maxCeremonies {
			return "", ErrBusy
		}
	}
	cs.m[id] = c
	return id, nil
}

// take removes and returns ceremony id if it is of kind, bound to bind,
// for rp, and not expired; errCeremony otherwise (it is removed anyway).
func (cs *ceremonies) take(id string, kind ceremonyKind, bind string, rp RP) (*ceremony, error) {
	cs.mu.Lock()
	c, ok := cs.m[id]
	delete(cs.m, id)
	cs.mu.Unlock()
	if !ok || c.kind != kind || c.bind != bind || c.rp != rp || !cs.now().Before(c.expires) {
		return nil, errCeremony
	}
	return c, nil
}

// len returns how many ceremonies are pending (expired ones included).
func (cs *ceremonies) len() int {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.m)
}
