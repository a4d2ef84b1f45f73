package users

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Key is one security key or passkey (a WebAuthn credential) registered
// to a user, as stored in the users file.
type Key struct {
	// ID is the credential ID the authenticator chose.
	ID []byte `json:"id"`
	// Name is what the user called the key ("YubiKey on the keyring").
	Name string `json:"name"`
	// RPID is the relying party ID the key was registered to: it works
	// only where the console is served under that name.
	RPID string `json:"rp_id"`
	// PublicKey is the credential's COSE public key.
	PublicKey []byte `json:"public_key"`
	// AttestationType and AttestationFormat are what the registration
	// conveyed ("none" unless the authenticator insisted).
	AttestationType   string `json:"attestation_type,omitempty"`
	AttestationFormat string `json:"attestation_format,omitempty"`
	// AAGUID names the authenticator model (all zeros for many).
	AAGUID []byte `json:"aaguid,omitempty"`
	// Transports are the transports the browser reported (usb, nfc, …).
	Transports []string `json:"transports,omitempty"`
	// Flags is the authenticator-data flags byte of the registration, then
	// of the last login (backup eligibility must never change).
	Flags uint8 `json:"flags"`
	// SignCount is the authenticator's signature counter at the last use:
	// a later assertion must carry a larger one, unless both are zero
	// (authenticators without a counter).
	SignCount uint32    `json:"sign_count"`
	Created   time.Time `json:"created"`
	LastUsed  time.Time `json:"last_used,omitzero"`
}

// MaxKeys caps the security keys of one user.
const MaxKeys = 20

// maxKeyNameLen caps a key's name (bytes).
const maxKeyNameLen = 64

// handleSize is the length of a WebAuthn user handle (random, never the
// name: the spec forbids personal data in it, §14.6.1).
const handleSize = 32

// ErrNoKey is returned for a credential ID the user has not registered.
var ErrNoKey = errors.New("no such security key")

// CheckKeyName validates a key's name: 1 to 64 bytes of printable text.
// The name is the user's own, shown back only to them and in the audit
// trail, where it is data.
func CheckKeyName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > maxKeyNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("a key name must be 1 to %d bytes", maxKeyNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("a key name may not hold control characters")
		}
	}
	return nil
}

// HasKey reports whether u has the key with credential ID id.
func (u User) HasKey(id []byte) bool {
	return slices.ContainsFunc(u.Keys, func(k Key) bool { return bytes.Equal(k.ID, id) })
}

// key returns u's key with credential ID id.
func (u User) key(id []byte) (Key, bool) {
	for _, k := range u.Keys {
		if bytes.Equal(k.ID, id) {
			return k, true
		}
	}
	return Key{}, false
}

// ensureHandle gives name a WebAuthn user handle if it has none yet and
// returns the user. generation must still be the user's.
func (f *File) ensureHandle(name string, generation int64) (User, error) {
	u, err := f.Get(name)
	if err != nil {
		return User{}, err
	}
	if u.Generation != generation {
		return User{}, ErrNoUser
	}
	if len(u.Handle) == handleSize {
		return u, nil
	}
	h := make([]byte, handleSize)
	if _, err := rand.Read(h); err != nil {
		return User{}, fmt.Errorf("generating a user handle: %w", err)
	}
	var out User
	err = f.Update(func(users []User) ([]User, error) {
		i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
		if i < 0 || users[i].Generation != generation {
			return nil, ErrNoUser
		}
		if len(users[i].Handle) != handleSize {
			users[i].Handle = h
		}
		out = users[i]
		return users, nil
	})
	return out, err
}

// addKey registers k to name (of generation). A credential ID registered
// to anyone already is refused (WebAuthn §7.1 step 26), as is a user's
// MaxKeys+1st key.
func (f *File) addKey(name string, generation int64, k Key) error {
	return f.Update(func(users []User) ([]User, error) {
		i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
		if i < 0 || users[i].Generation != generation {
			return nil, ErrNoUser
		}
		for _, o := range users {
			if o.HasKey(k.ID) {
				return nil, errors.New("this security key is registered already")
			}
		}
		if len(users[i].Keys) >= MaxKeys {
			return nil, fmt.Errorf("at most %d security keys per user: remove one first", MaxKeys)
		}
		users[i].Keys = append(users[i].Keys, k)
		return users, nil
	})
}

// removeKey deletes name's key id and returns it.
func (f *File) removeKey(name string, generation int64, id []byte) (Key, error) {
	var out Key
	err := f.Update(func(users []User) ([]User, error) {
		i, j, err := findKey(users, name, generation, id)
		if err != nil {
			return nil, err
		}
		out = users[i].Keys[j]
		users[i].Keys = slices.Delete(users[i].Keys, j, j+1)
		return users, nil
	})
	return out, err
}

// errCounter is returned by acceptKey when the signature counter did not
// advance past the stored one.
var errCounter = errors.New("signature counter did not advance")

// acceptKey records a successful assertion of name's key id: its new
// signature counter, flags and time. Under the file lock (shared with
// other processes), the counter must advance past the stored one unless
// both are zero, so two logins racing with copies of one key cannot both
// pass; errCounter otherwise.
func (f *File) acceptKey(name string, generation int64, id []byte, count uint32, flags uint8, now time.Time) (Key, error) {
	var out Key
	err := f.Update(func(users []User) ([]User, error) {
		i, j, err := findKey(users, name, generation, id)
		if err != nil {
			return nil, err
		}
		k := &users[i].Keys[j]
		if (count != 0 || k.SignCount != 0) && count <= k.SignCount {
			out = *k
			return nil, errCounter
		}
		k.SignCount, k.Flags, k.LastUsed = count, flags, now.UTC()
		out = *k
		return users, nil
	})
	return out, err
}

// findKey returns the index of name's entry in users and of its key id:
// ErrNoUser when name is gone or was re-created (another generation),
// ErrNoKey when it has no such key.
func findKey(users []User, name string, generation int64, id []byte) (int, int, error) {
	i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
	if i < 0 || users[i].Generation != generation {
		return 0, 0, ErrNoUser
	}
	j := slices.IndexFunc(users[i].Keys, func(k Key) bool { return bytes.Equal(k.ID, id) })
	if j < 0 {
		return 0, 0, ErrNoKey
	}
	return i, j, nil
}
