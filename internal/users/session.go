package users

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"
)

// Session is one logged-in browser.
type Session struct {
	// User and Role are who is logged in; Generation is the user's at login.
	User       string
	Role       Role
	Generation int64
	// Key is the credential ID of the security key the user logged in
	// with (none after a TOTP login): removing that key ends the session.
	Key []byte
	// CSRF is the token the browser must send in X-CSRF-Token with every
	// change.
	CSRF     string
	Created  time.Time
	LastSeen time.Time
}

// ErrNoSession is returned for a missing, expired or revoked session.
var ErrNoSession = errors.New("no valid session")

// Sessions holds the console's sessions in memory: a restart logs
// everyone out. Tokens are kept only as their SHA-256, so a memory dump
// of the map does not hold usable cookies.
type Sessions struct {
	file    *File
	idle    time.Duration
	maxAge  time.Duration
	now     func() time.Time
	mu      sync.Mutex
	byToken map[[32]byte]*Session
}

// maxSessions bounds the sessions held; the oldest is evicted beyond it.
const maxSessions = 10000

// NewSessions returns a session table. idle ends a session not used for
// that long; maxAge ends any session that old. Each session is checked
// against f on use, so a deleted user or a reset password or TOTP ends it.
func NewSessions(f *File, idle, maxAge time.Duration, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{file: f, idle: idle, maxAge: maxAge, now: now, byToken: map[[32]byte]*Session{}}
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Create starts a session for u, who logged in with the security key key
// (its credential ID; nil after a TOTP code), and returns its cookie
// token. Removing that key ends the session. Every login gets a new token (no session fixation: a token planted before login is
// never promoted).
func (s *Sessions) Create(u User, key []byte) (token string, sess Session, err error) {
	token, err = randomToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	ns := &Session{User: u.Name, Role: u.Role, Generation: u.Generation, Key: key, CSRF: csrf, Created: now, LastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byToken) >= maxSessions {
		s.evictOldest()
	}
	s.byToken[sha256.Sum256([]byte(token))] = ns
	return token, *ns, nil
}

// evictOldest drops expired sessions, or else the least recently used.
func (s *Sessions) evictOldest() {
	now := s.now()
	var oldest [32]byte
	var at time.Time
	for k, v := range s.byToken {
		if s.expired(v, now) {
			delete(s.byToken, k)
			continue
		}
		if at.IsZero() || v.LastSeen.Before(at) {
			oldest, at = k, v.LastSeen
		}
	}
	if len(s.byToken) >= maxSessions {
		delete(s.byToken, oldest)
	}
}

func (s *Sessions) expired(v *Session, now time.Time) bool {
	return now.Sub(v.LastSeen) > s.idle || now.Sub(v.Created) > s.maxAge
}

// Get returns the session of token. touch marks it used (a page's own
// request), false leaves the idle clock alone (a live stream). The user is
// re-read from the users file: a deleted user, a changed role, a reset
// password or TOTP, or the removal of the key the user logged in with ends
// or updates the session.
func (s *Sessions) Get(token string, touch bool) (Session, error) {
	if token == "" {
		return Session{}, ErrNoSession
	}
	key := sha256.Sum256([]byte(token))
	s.mu.Lock()
	v, ok := s.byToken[key]
	now := s.now()
	if ok && s.expired(v, now) {
		delete(s.byToken, key)
		ok = false
	}
	var out Session
	if ok {
		out = *v
	}
	s.mu.Unlock()
	if !ok {
		return Session{}, ErrNoSession
	}
	u, err := s.file.Get(out.User)
	if err != nil || u.Generation != out.Generation || len(out.Key) > 0 && !u.HasKey(out.Key) {
		s.Revoke(token)
		return Session{}, ErrNoSession
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok = s.byToken[key]
	if !ok {
		return Session{}, ErrNoSession
	}
	v.Role = u.Role
	if touch {
		v.LastSeen = now
	}
	return *v, nil
}

// Revoke ends the session of token.
func (s *Sessions) Revoke(token string) {
	key := sha256.Sum256([]byte(token))
	s.mu.Lock()
	delete(s.byToken, key)
	s.mu.Unlock()
}

// Len returns how many sessions are held (expired ones not yet dropped
// included).
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byToken)
}
