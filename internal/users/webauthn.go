package users

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// WebAuthn (github.com/go-webauthn/webauthn) as a second factor: a user
// who logged in with password and TOTP registers security keys and
// passkeys; later, after the password, an assertion from one of them
// takes the place of the TOTP code.
//
// Logins use discoverable credentials (residentKey "required" at
// registration) and send no allowCredentials: the challenge asked for
// before the login names no user, so it reveals neither which names exist
// nor which have keys, and the password is judged only together with the
// assertion, so a wrong password and a wrong key get the same answer. The
// cost: a U2F-only key that cannot hold a discoverable credential cannot
// be registered.

// rpName is the relying party's display name authenticators show.
const rpName = "tollguard"

// CounterError reports an assertion whose signature counter did not
// advance past the stored one: a cloned authenticator, or a broken one.
// The login or check is refused: errors.Is(err, ErrLogin) holds.
type CounterError struct {
	User, Key   string
	Stored, Got uint32
}

func (e *CounterError) Error() string {
	return fmt.Sprintf("security key %q of %s: signature counter %d is not above the stored %d (cloned key?)", e.Key, e.User, e.Got, e.Stored)
}

// Is makes a CounterError an ErrLogin.
func (e *CounterError) Is(target error) bool { return target == ErrLogin }

// ErrSecondFactor is the answer to a wrong TOTP code or security-key
// assertion where a logged-in user must confirm a change.
var ErrSecondFactor = errors.New("wrong code or security key")

// relyingParty returns the library configured for rp alone.
func relyingParty(rp RP) (*webauthn.WebAuthn, error) {
	wa, err := webauthn.New(&webauthn.Config{
		RPID: rp.ID, RPDisplayName: rpName, RPOrigins: []string{rp.Origin},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationPreferred,
		},
		// What the browser is told; CeremonyTTL is enforced here.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn relying party %q: %w", rp.ID, err)
	}
	return wa, nil
}

// waUser adapts a User to the library.
type waUser struct{ u User }

func (w waUser) WebAuthnID() []byte          { return w.u.Handle }
func (w waUser) WebAuthnName() string        { return w.u.Name }
func (w waUser) WebAuthnDisplayName() string { return w.u.Name }
func (w waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(w.u.Keys))
	for _, k := range w.u.Keys {
		tr := make([]protocol.AuthenticatorTransport, 0, len(k.Transports))
		for _, t := range k.Transports {
			tr = append(tr, protocol.AuthenticatorTransport(t))
		}
		out = append(out, webauthn.Credential{
			ID: k.ID, PublicKey: k.PublicKey, AttestationType: k.AttestationType, AttestationFormat: k.AttestationFormat,
			Transport: tr, Flags: webauthn.NewCredentialFlags(protocol.AuthenticatorFlags(k.Flags)),
			Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount},
		})
	}
	return out
}

var _ webauthn.User = waUser{}

// BeginKeyLogin starts a security-key login from source and returns the
// ceremony's ID and the options for navigator.credentials.get. It names
// no user (see the package comment); LoginKey finishes it, from the same
// source, within CeremonyTTL, once.
func (a *Authenticator) BeginKeyLogin(rp RP, source netip.Addr) (string, *protocol.CredentialAssertion, error) {
	wa, err := relyingParty(rp)
	if err != nil {
		return "", nil, err
	}
	opts, data, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred),
		webauthn.WithLoginRelyingPartyID(rp.ID), webauthn.WithLoginOrigin(rp.Origin))
	if err != nil {
		return "", nil, fmt.Errorf("starting a security-key login: %w", err)
	}
	id, err := a.ceremonies.put(&ceremony{kind: kindLogin, bind: loginBind(source), rp: rp, data: *data})
	return id, opts, err
}

func loginBind(source netip.Addr) string { return "login\x00" + source.Unmap().String() }

// LoginKey checks name and password together with credential, the
// browser's PublicKeyCredential (JSON) answering ceremony id, and returns
// the user and the key used. Lockout and answers are those of Login: a
// failed assertion after a right password counts like a wrong TOTP code,
// and every failure is ErrLogin. A key whose signature counter went
// backwards is refused with a *CounterError (also an ErrLogin) for the
// caller to log.
func (a *Authenticator) LoginKey(name, password, id string, rp RP, credential []byte, source netip.Addr) (User, Key, error) {
	now := a.now()
	cer, cerr := a.ceremonies.take(id, kindLogin, loginBind(source), rp)
	src := source.Unmap().String()
	pairKey := name + "\x00" + src
	if a.pair.locked(pairKey, now) || a.src.locked(src, now) {
		checkPassword("", password, a.file.dummyHash())
		return User{}, Key{}, ErrLocked
	}
	u, err := a.file.Get(name)
	if err != nil && !errors.Is(err, ErrNoUser) {
		checkPassword("", password, a.file.dummyHash())
		return User{}, Key{}, err
	}
	fail := func(cause error) (User, Key, error) {
		a.pair.fail(pairKey, now)
		a.src.fail(src, now)
		var ce *CounterError
		if errors.As(cause, &ce) {
			return User{}, Key{}, ce
		}
		return User{}, Key{}, ErrLogin
	}
	if !checkPassword(u.Hash, password, a.file.dummyHash()) {
		return fail(nil)
	}
	if a.codes.locked(u.Name, now) {
		return fail(nil)
	}
	if cerr != nil {
		a.codes.fail(u.Name, now)
		return fail(nil)
	}
	k, err := a.assert(u, cer, credential, now)
	if err != nil {
		// A malformed answer, a wrong or cloned key: as a wrong code.
		a.codes.fail(u.Name, now)
		return fail(err)
	}
	a.pair.reset(pairKey)
	return u, k, nil
}

// assert verifies credential against u's keys and ceremony c, and records
// the key's new signature counter. Errors: a *CounterError for a counter
// that went backwards, ErrNoUser if u changed meanwhile, else the
// library's verdict.
func (a *Authenticator) assert(u User, c *ceremony, credential []byte, now time.Time) (Key, error) {
	if len(u.Keys) == 0 || len(u.Handle) == 0 {
		return Key{}, ErrNoKey
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return Key{}, fmt.Errorf("reading the assertion: %w", err)
	}
	wa, err := relyingParty(c.rp)
	if err != nil {
		return Key{}, err
	}
	var cred *webauthn.Credential
	if c.kind == kindLogin {
		_, cred, err = wa.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) {
			if !bytes.Equal(handle, u.Handle) {
				return nil, ErrNoKey
			}
			return waUser{u}, nil
		}, c.data, parsed)
	} else {
		cred, err = wa.ValidateLogin(waUser{u}, c.data, parsed)
	}
	if err != nil {
		return Key{}, fmt.Errorf("verifying the assertion: %w", err)
	}
	stored, _ := u.key(cred.ID)
	got := parsed.Response.AuthenticatorData.Counter
	if cred.Authenticator.CloneWarning {
		return Key{}, &CounterError{User: u.Name, Key: stored.Name, Stored: stored.SignCount, Got: got}
	}
	k, err := a.file.acceptKey(u.Name, u.Generation, cred.ID, got, uint8(parsed.Response.AuthenticatorData.Flags), now)
	if errors.Is(err, errCounter) {
		return Key{}, &CounterError{User: u.Name, Key: k.Name, Stored: k.SignCount, Got: got}
	}
	return k, err
}

// BeginAddKey starts registering a key for the logged-in user s, whose
// session is identified by bind (the finishing request must present the
// same). It returns the ceremony's ID and the options for
// navigator.credentials.create: a discoverable credential, user
// verification preferred, no attestation, the user's keys excluded.
func (a *Authenticator) BeginAddKey(s Session, bind string, rp RP) (string, *protocol.CredentialCreation, error) {
	u, err := a.file.ensureHandle(s.User, s.Generation)
	if err != nil {
		return "", nil, err
	}
	wa, err := relyingParty(rp)
	if err != nil {
		return "", nil, err
	}
	w := waUser{u}
	opts, data, err := wa.BeginRegistration(w, webauthn.WithExclusions(webauthn.Credentials(w.WebAuthnCredentials()).CredentialDescriptors()),
		webauthn.WithRegistrationRelyingPartyID(rp.ID), webauthn.WithRegistrationOrigin(rp.Origin))
	if err != nil {
		return "", nil, fmt.Errorf("starting a key registration: %w", err)
	}
	id, err := a.ceremonies.put(&ceremony{kind: kindRegister, bind: bind, user: u.Name, gen: u.Generation, rp: rp, data: *data})
	return id, opts, err
}

// FinishAddKey registers the key credential (the browser's
// PublicKeyCredential, JSON) answering ceremony id, under keyName, to
// the logged-in user s.
func (a *Authenticator) FinishAddKey(s Session, bind, id string, rp RP, keyName string, credential []byte) (Key, error) {
	c, err := a.ceremonies.take(id, kindRegister, bind, rp)
	if err != nil {
		return Key{}, err
	}
	if c.user != s.User || c.gen != s.Generation {
		return Key{}, errCeremony
	}
	if err := CheckKeyName(keyName); err != nil {
		return Key{}, err
	}
	u, err := a.file.Get(s.User)
	if err != nil {
		return Key{}, err
	}
	if u.Generation != c.gen {
		return Key{}, ErrNoUser
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return Key{}, fmt.Errorf("reading the new key: %w", err)
	}
	wa, err := relyingParty(rp)
	if err != nil {
		return Key{}, err
	}
	cred, err := wa.CreateCredential(waUser{u}, c.data, parsed)
	if err != nil {
		return Key{}, fmt.Errorf("verifying the new key: %w", err)
	}
	k := Key{
		ID: cred.ID, Name: keyName, RPID: rp.ID, PublicKey: cred.PublicKey, AttestationType: cred.AttestationType,
		AttestationFormat: cred.AttestationFormat, AAGUID: cred.Authenticator.AAGUID,
		Flags: uint8(parsed.Response.AttestationObject.AuthData.Flags), SignCount: cred.Authenticator.SignCount,
		Created: a.now().UTC(),
	}
	for _, t := range cred.Transport {
		k.Transports = append(k.Transports, string(t))
	}
	if err := a.file.addKey(u.Name, u.Generation, k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// BeginReauth starts a fresh second-factor check with one of the
// logged-in user's keys (to confirm a change such as removing a key).
func (a *Authenticator) BeginReauth(s Session, bind string, rp RP) (string, *protocol.CredentialAssertion, error) {
	u, err := a.file.Get(s.User)
	if err != nil {
		return "", nil, err
	}
	if u.Generation != s.Generation {
		return "", nil, ErrNoUser
	}
	if len(u.Keys) == 0 {
		return "", nil, ErrNoKey
	}
	wa, err := relyingParty(rp)
	if err != nil {
		return "", nil, err
	}
	opts, data, err := wa.BeginLogin(waUser{u}, webauthn.WithUserVerification(protocol.VerificationPreferred),
		webauthn.WithLoginRelyingPartyID(rp.ID), webauthn.WithLoginOrigin(rp.Origin))
	if err != nil {
		return "", nil, fmt.Errorf("starting a key check: %w", err)
	}
	id, err := a.ceremonies.put(&ceremony{kind: kindReauth, bind: bind, user: u.Name, gen: u.Generation, rp: rp, data: *data})
	return id, opts, err
}

// Proof is a fresh second factor: a TOTP code, or a key's answer
// (Credential, JSON) to the BeginReauth ceremony Ceremony.
type Proof struct {
	Code       string
	Ceremony   string
	Credential []byte
}

// RemoveKey deletes the logged-in user's key id once proof checks out. A
// wrong proof counts like a wrong TOTP code at login (the user's codes
// lock after CodeAttempts); ErrSecondFactor, or ErrLocked while locked.
// A key whose counter went backwards gives a *CounterError.
func (a *Authenticator) RemoveKey(s Session, bind string, rp RP, id []byte, proof Proof) (Key, error) {
	now := a.now()
	u, err := a.file.Get(s.User)
	if err != nil {
		return Key{}, err
	}
	if u.Generation != s.Generation {
		return Key{}, ErrNoUser
	}
	if !u.HasKey(id) {
		return Key{}, ErrNoKey
	}
	if err := a.secondFactor(u, bind, rp, proof, now); err != nil {
		return Key{}, err
	}
	return a.file.removeKey(u.Name, u.Generation, id)
}

// secondFactor checks proof for u, counting a failure against the user's
// code limiter.
func (a *Authenticator) secondFactor(u User, bind string, rp RP, proof Proof, now time.Time) error {
	if a.codes.locked(u.Name, now) {
		return ErrLocked
	}
	fail := func(cause error) error {
		a.codes.fail(u.Name, now)
		var ce *CounterError
		if errors.As(cause, &ce) {
			return ce
		}
		return ErrSecondFactor
	}
	if proof.Ceremony != "" {
		c, err := a.ceremonies.take(proof.Ceremony, kindReauth, bind, rp)
		if err != nil || c.user != u.Name || c.gen != u.Generation {
			return fail(nil)
		}
		if _, err := a.assert(u, c, proof.Credential, now); err != nil {
			return fail(err)
		}
		return nil
	}
	step, ok := matchStep(u.TOTP, proof.Code, now, u.LastStep)
	if !ok {
		return fail(nil)
	}
	if err := a.file.acceptStep(u.Name, u.Generation, step); err != nil {
		if errors.Is(err, errCodeUsed) {
			return fail(nil)
		}
		return err
	}
	return nil
}
