// Package users owns the console's accounts: the users file in the data
// directory, password hashing (bcrypt), TOTP enrolment and single-use
// verification, login rate limiting and lockout, and browser sessions.
//
// The users file is <data_dir>/users.json, mode 0600, rewritten atomically
// (temporary file and rename) under an advisory lock on users.json.lock, so
// the `tollguard user` command and the daemon may both change it: the daemon
// re-reads it whenever its size or modification time changed.
package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// FileName is the users file inside data_dir.
const FileName = "users.json"

// Role is what a user may do in the console.
type Role string

// The roles, from least to most privileged.
const (
	// Viewer reads every page, with phone numbers masked.
	Viewer Role = "viewer"
	// Operator may also ban, unban and unmask phone numbers.
	Operator Role = "operator"
	// Admin may do everything, backups included.
	Admin Role = "admin"
)

// ParseRole parses viewer, operator or admin.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case Viewer, Operator, Admin:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (viewer, operator or admin)", s)
}

// rank orders the roles.
func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Operator:
		return 2
	case Admin:
		return 3
	}
	return 0
}

// AtLeast reports whether r has at least the privileges of min.
func (r Role) AtLeast(min Role) bool { return r.rank() > 0 && r.rank() >= min.rank() }

// User is one console account as stored in the users file.
type User struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Hash is the bcrypt hash of the password.
	Hash string `json:"hash"`
	// TOTP is the base32 TOTP secret.
	TOTP string `json:"totp"`
	// LastStep is the TOTP time step of the last code accepted: a code is
	// accepted only for a later step, so each code works once.
	LastStep int64 `json:"last_step"`
	// Generation changes whenever the password or TOTP secret is reset;
	// sessions of an older generation end.
	Generation int64     `json:"generation"`
	Created    time.Time `json:"created"`
	// Handle is the user's WebAuthn user handle: 32 random bytes, made at
	// the first key registration, new after reset-mfa (format 2).
	Handle []byte `json:"handle,omitempty"`
	// Keys are the user's security keys and passkeys (format 2).
	Keys []Key `json:"keys,omitempty"`
}

// fileVersion is the users file format written. 1: accounts with
// password and TOTP; 2: also security keys (User.Handle, User.Keys). A
// format-1 file loads as is (no keys); a file of a later format is
// refused rather than rewritten without what this version cannot read.
const fileVersion = 2

// file is the JSON document.
type file struct {
	Version int    `json:"version"`
	Users   []User `json:"users"`
}

// ErrNoUser is returned for a user name that is not in the file.
var ErrNoUser = errors.New("no such user")

// ErrExists is returned when adding a user name already present.
var ErrExists = errors.New("user already exists")

// MaxNameLen caps a user name.
const MaxNameLen = 64

// CheckName validates a user name: 1 to 64 letters, digits, '.', '_' or
// '-'. "token" is reserved: the audit log names API-token actors token@….
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) {
		return fmt.Errorf("user name must be 1 to %d characters", MaxNameLen)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("user name %q may hold only letters, digits, '.', '_' and '-'", name)
		}
	}
	if strings.EqualFold(name, "token") {
		return errors.New(`user name "token" is reserved for API tokens`)
	}
	return nil
}

// File is the users file of one data directory. Its methods are safe for
// concurrent use and see changes other processes made to the file.
type File struct {
	path string
	// cost is the bcrypt cost of new hashes (bcryptCost; tests lower it).
	cost int
	// dummy is a hash of that cost for unknown names (see checkPassword).
	dummyOnce sync.Once
	dummy     []byte

	mu    sync.Mutex
	users []User
	size  int64
	mtime time.Time
	// loaded is true once the file was read (or found missing).
	loaded bool
}

// Open returns the users file of dataDir. The file need not exist yet.
func Open(dataDir string) *File {
	return &File{path: filepath.Join(dataDir, FileName), cost: bcryptCost}
}

// dummyHash returns the hash unknown names are checked against.
func (f *File) dummyHash() []byte {
	f.dummyOnce.Do(func() {
		f.dummy, _ = bcrypt.GenerateFromPassword([]byte("tollguard-no-such-user-padding"), f.cost)
	})
	return f.dummy
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// refresh re-reads the file if it changed since the last read. f.mu is held.
func (f *File) refresh() error {
	fi, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.users, f.loaded, f.size, f.mtime = nil, true, 0, time.Time{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading users file: %w", err)
	}
	if f.loaded && fi.Size() == f.size && fi.ModTime().Equal(f.mtime) {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("users file %s has mode %04o, group or others may read it: run `chmod 600 %s`", f.path, perm, f.path)
	}
	data, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("reading users file: %w", err)
	}
	var doc file
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("users file %s is not valid: %w", f.path, err)
	}
	if doc.Version > fileVersion {
		return fmt.Errorf("users file %s has format %d; this tollguard reads up to %d: upgrade it", f.path, doc.Version, fileVersion)
	}
	f.users, f.loaded, f.size, f.mtime = doc.Users, true, fi.Size(), fi.ModTime()
	return nil
}

// List returns the users, sorted by name.
func (f *File) List() ([]User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refresh(); err != nil {
		return nil, err
	}
	out := slices.Clone(f.users)
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the user called name, or ErrNoUser.
func (f *File) Get(name string) (User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refresh(); err != nil {
		return User{}, err
	}
	for _, u := range f.users {
		if u.Name == name {
			return u, nil
		}
	}
	return User{}, ErrNoUser
}

// Update runs fn on the current users under the file lock (shared with
// other processes) and writes the result atomically if fn returns nil.
func (f *File) Update(fn func(users []User) ([]User, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("creating data_dir: %w", err)
	}
	lock, err := os.OpenFile(f.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("locking users file: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking users file: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	f.loaded = false // always re-read under the lock
	if err := f.refresh(); err != nil {
		return err
	}
	// fn gets its own copies of the key lists: it may change them in place
	// (a counter, a deletion) and then fail, and the cache must not keep
	// a change that was never written.
	users := make([]User, len(f.users))
	for i, u := range f.users {
		u.Keys, u.Handle = slices.Clone(u.Keys), slices.Clone(u.Handle)
		users[i] = u
	}
	users, err = fn(users)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(file{Version: fileVersion, Users: users}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding users file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".users-*.json")
	if err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(append(data, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(tmp.Name(), 0o600)); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("writing users file: %w", err)
	}
	f.loaded = false
	return f.refresh()
}

// Add creates a user with a bcrypt hash of password and a new TOTP
// secret, and returns the user (whose TOTP field the caller shows once as
// an otpauth:// URI).
func (f *File) Add(name string, role Role, password string, now time.Time) (User, error) {
	if err := CheckName(name); err != nil {
		return User{}, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return User{}, err
	}
	hash, err := hashPassword(password, f.cost)
	if err != nil {
		return User{}, err
	}
	secret, err := NewSecret()
	if err != nil {
		return User{}, err
	}
	u := User{Name: name, Role: role, Hash: hash, TOTP: secret, Generation: now.UnixNano(), Created: now.UTC()}
	err = f.Update(func(users []User) ([]User, error) {
		for _, o := range users {
			if o.Name == name {
				return nil, fmt.Errorf("%w: %s", ErrExists, name)
			}
		}
		return append(users, u), nil
	})
	return u, err
}

// Delete removes a user; its sessions end at their next request.
func (f *File) Delete(name string) error {
	return f.Update(func(users []User) ([]User, error) {
		i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNoUser, name)
		}
		return slices.Delete(users, i, i+1), nil
	})
}

// ResetMFA gives a user a new TOTP secret, removes their security keys
// and user handle, and returns the user; the old authenticator app entry
// and keys stop working and the user's sessions end.
func (f *File) ResetMFA(name string, now time.Time) (User, error) {
	secret, err := NewSecret()
	if err != nil {
		return User{}, err
	}
	var out User
	err = f.Update(func(users []User) ([]User, error) {
		i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s", ErrNoUser, name)
		}
		users[i].TOTP, users[i].LastStep, users[i].Generation = secret, 0, now.UnixNano()
		users[i].Keys, users[i].Handle = nil, nil
		out = users[i]
		return users, nil
	})
	return out, err
}

// acceptStep records that name's TOTP code for step was used. It fails
// (and the login with it) when step is not after the last accepted one:
// another login used the code meanwhile.
func (f *File) acceptStep(name string, generation, step int64) error {
	return f.Update(func(users []User) ([]User, error) {
		i := slices.IndexFunc(users, func(u User) bool { return u.Name == name })
		if i < 0 || users[i].Generation != generation {
			return nil, ErrNoUser
		}
		if step <= users[i].LastStep {
			return nil, errCodeUsed
		}
		users[i].LastStep = step
		return users, nil
	})
}
