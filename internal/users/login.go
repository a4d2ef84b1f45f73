package users

import (
	"errors"
	"net/netip"
	"time"
)

// ErrLogin is the one answer to a failed login, whatever failed (name,
// password or code), so an attacker learns nothing about which.
var ErrLogin = errors.New("wrong user name, password or code")

// ErrLocked is returned while a login is locked out.
var ErrLocked = errors.New("too many failed logins; try again later")

// Authenticator checks logins against a users file, with rate limits.
type Authenticator struct {
	file  *File
	now   func() time.Time
	pair  *limiter // name+source
	src   *limiter // source
	codes *limiter // name, wrong TOTP or key after a right password
	// ceremonies are the pending WebAuthn challenges (webauthn.go).
	ceremonies *ceremonies
}

// NewAuthenticator returns an Authenticator over f; now nil means time.Now.
func NewAuthenticator(f *File, lim Limits, now func() time.Time) *Authenticator {
	if now == nil {
		now = time.Now
	}
	lim = lim.withDefaults()
	return &Authenticator{
		file:  f,
		now:   now,
		pair:  newLimiter(lim.Attempts, lim.Window, lim.Lockout),
		src:   newLimiter(lim.SourceAttempts, lim.Window, lim.Lockout),
		codes: newLimiter(lim.CodeAttempts, lim.Window, lim.Lockout),

		ceremonies: newCeremonies(now),
	}
}

// Login checks name, password and TOTP code from source and returns the
// user. It returns ErrLocked while the name+source pair or the source is
// locked out, and ErrLogin for any wrong credential (and while the
// user's TOTP is locked, so the answer never confirms a right password). A
// code is accepted once: replaying it, even within its 30 s, fails. The
// password is always checked (against a dummy hash for an unknown name)
// so the time taken does not reveal whether the name exists.
//
// Lockout is per name and source address, plus per source: an attacker
// elsewhere cannot lock an administrator out of their own workstation by
// guessing at the admin's name. The cost is that a password guesser
// spread over many addresses gets Attempts tries per address per window;
// the TOTP code stops such a guesser, and wrong codes after a right
// password lock the user's TOTP across all sources (only someone who
// knows the password can trigger that).
func (a *Authenticator) Login(name, password, code string, source netip.Addr) (User, error) {
	now := a.now()
	src := source.Unmap().String()
	pairKey := name + "\x00" + src
	if a.pair.locked(pairKey, now) || a.src.locked(src, now) {
		// Do the same work as a real attempt: a locked-out reply must not
		// be told apart by its speed from a wrong password.
		checkPassword("", password, a.file.dummyHash())
		return User{}, ErrLocked
	}
	u, err := a.file.Get(name)
	if err != nil && !errors.Is(err, ErrNoUser) {
		checkPassword("", password, a.file.dummyHash())
		return User{}, err
	}
	fail := func() (User, error) {
		a.pair.fail(pairKey, now)
		a.src.fail(src, now)
		return User{}, ErrLogin
	}
	if !checkPassword(u.Hash, password, a.file.dummyHash()) {
		return fail()
	}
	if a.codes.locked(u.Name, now) {
		// The same answer as a wrong password: a distinct one here would
		// tell a password guesser that this guess was right.
		return fail()
	}
	step, ok := matchStep(u.TOTP, code, now, u.LastStep)
	if !ok {
		a.codes.fail(u.Name, now)
		return fail()
	}
	if err := a.file.acceptStep(u.Name, u.Generation, step); err != nil {
		if errors.Is(err, errCodeUsed) || errors.Is(err, ErrNoUser) {
			return fail()
		}
		return User{}, err
	}
	a.pair.reset(pairKey)
	u.LastStep = step
	return u, nil
}
