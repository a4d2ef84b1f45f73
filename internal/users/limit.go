package users

import (
	"sync"
	"time"
)

// Limits are the login rate limits. The zero value of a field means its
// default.
type Limits struct {
	// Attempts is how many failed logins one name may have from one source
	// address within Window before that pair is locked out. Default 5.
	Attempts int
	// SourceAttempts is how many failed logins one source address may have
	// within Window, whatever the names, before it is locked out.
	// Default 20.
	SourceAttempts int
	// CodeAttempts is how many wrong TOTP codes or failed security-key
	// assertions, after a right password (or in a logged-in user's
	// confirmation of a change), one user may get within Window from all
	// sources together before both are refused for that user for Lockout.
	// Default 10.
	CodeAttempts int
	// Window is the counting window. Default 15m.
	Window time.Duration
	// Lockout is how long a lockout lasts. Default 15m.
	Lockout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.Attempts <= 0 {
		l.Attempts = 5
	}
	if l.SourceAttempts <= 0 {
		l.SourceAttempts = 20
	}
	if l.CodeAttempts <= 0 {
		l.CodeAttempts = 10
	}
	if l.Window <= 0 {
		l.Window = 15 * time.Minute
	}
	if l.Lockout <= 0 {
		l.Lockout = 15 * time.Minute
	}
	return l
}

// maxKeys bounds each limiter's memory: past it, the oldest-expiring
// entries are swept first, and if none has expired new keys are counted
// as locked (fail closed) rather than growing without bound.
const maxKeys = 50000

// counter is one key's failures in the current window.
type counter struct {
	start  time.Time
	n      int
	locked time.Time // locked until
}

// limiter counts failures per key with a fixed window and a lockout.
type limiter struct {
	mu      sync.Mutex
	max     int
	window  time.Duration
	lockout time.Duration
	m       map[string]*counter
}

func newLimiter(max int, window, lockout time.Duration) *limiter {
	return &limiter{max: max, window: window, lockout: lockout, m: map[string]*counter{}}
}

// locked reports whether key is locked out at now.
func (l *limiter) locked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[key]
	return c != nil && now.Before(c.locked)
}

// fail counts one failure of key and reports whether key is now locked.
func (l *limiter) fail(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.m[key]
	if c == nil {
		if len(l.m) >= maxKeys {
			l.sweep(now)
			if len(l.m) >= maxKeys {
				return true
			}
		}
		c = &counter{start: now}
		l.m[key] = c
	}
	if now.Sub(c.start) > l.window {
		c.start, c.n = now, 0
	}
	c.n++
	if c.n >= l.max {
		c.locked = now.Add(l.lockout)
		c.start, c.n = now, 0
	}
	return now.Before(c.locked)
}

// reset forgets key (after a successful login).
func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// sweep drops entries whose window and lockout are both over. l.mu is held.
func (l *limiter) sweep(now time.Time) {
	for k, c := range l.m {
		if now.Sub(c.start) > l.window && !now.Before(c.locked) {
			delete(l.m, k)
		}
	}
}
