package api

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// TokenFile is the name of the admin token file inside data_dir.
const TokenFile = "admin.token"

// tokenBytes is the token's entropy; the file holds it hex-encoded.
const tokenBytes = 32

// LoadOrCreateToken returns the admin token kept in <dataDir>/admin.token and
// the file's path. At first start it creates dataDir (mode 0700) and the
// file (mode 0600) holding 32 random bytes in hex; afterwards it reuses the
// file unchanged.
//
// A token file readable or writable by group or others is refused rather
// than repaired: the token may already have been copied, and only the
// operator can decide to rotate it (delete the file) or keep it (chmod 600).
func LoadOrCreateToken(dataDir string) ([]byte, string, error) {
	path := filepath.Join(dataDir, TokenFile)
	tok, err := readToken(path)
	if err == nil {
		return tok, path, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, path, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, path, fmt.Errorf("creating data_dir: %w", err)
	}
	raw := make([]byte, tokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return nil, path, fmt.Errorf("generating admin token: %w", err)
	}
	tok = []byte(hex.EncodeToString(raw))
	// O_EXCL: if another process created the file meanwhile, use its token.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		tok, err := readToken(path)
		return tok, path, err
	}
	if err != nil {
		return nil, path, fmt.Errorf("creating admin token: %w", err)
	}
	_, werr := f.Write(append(tok, '\n'))
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(path)
		return nil, path, fmt.Errorf("writing admin token %s: %w", path, err)
	}
	return tok, path, nil
}

// readToken reads and checks an existing token file.
func readToken(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("admin token %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("admin token %s has mode %04o, group or others may read it: "+
			"run `chmod 600 %s` to keep it, or delete it to have a new one generated", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading admin token: %w", err)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) < 32 {
		return nil, fmt.Errorf("admin token %s is too short (%d bytes, need at least 32): delete it to have a new one generated", path, len(tok))
	}
	return tok, nil
}
