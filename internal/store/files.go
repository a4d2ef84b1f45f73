package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// privateFileMode is the mode of every file the store creates: the
// signing key, the database and its -wal/-shm, backups.
const privateFileMode fs.FileMode = 0o600

// createPrivate creates path (which must not exist) with mode 0600 and
// closes it. The mode is set with chmod as well, so no umask widens it;
// SQLite gives the -wal and -shm files it creates the mode of the database.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, privateFileMode)
	if err != nil {
		return err
	}
	err = f.Chmod(privateFileMode)
	return errors.Join(err, f.Close())
}

// checkPrivateFiles refuses to start on store files that group or others
// may read or write (a copy of an earlier version made them 0644): the log
// may already have been read and the key copied, so only the operator can
// decide. The error names every such file and the one chmod that fixes
// them; nothing is changed. Missing files are fine (created 0600 later).
func checkPrivateFiles(paths ...string) error {
	var wide, names []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("checking %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			wide = append(wide, fmt.Sprintf("%s (mode %04o)", p, perm))
			names = append(names, shellQuote(p))
		}
	}
	if len(wide) == 0 {
		return nil
	}
	return fmt.Errorf("group or others may read or write %s: run `chmod 600 %s` and start again "+
		"(if others may already have read %s, also consider who could have copied the data)",
		strings.Join(wide, ", "), strings.Join(names, " "), KeyFile)
}

// checkDataDir refuses a data directory that group or others may write:
// they could replace the key or the database. A directory that others may
// only list is accepted (systemd's StateDirectory= creates 0755); the
// store creates it 0700.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking data_dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data_dir %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("data_dir %s has mode %04o, group or others may write it: run `chmod 700 %s` and start again",
			dir, perm, shellQuote(dir))
	}
	return nil
}

// mkdirPrivate creates dir and its missing parents with mode 0700 (set
// with chmod too, so no umask changes it); an existing directory is left
// as it is.
func mkdirPrivate(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// shellQuote quotes p for a POSIX shell when it holds anything but
// letters, digits and /._-+:@.
func shellQuote(p string) string {
	safe := p != "" && strings.IndexFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:@", r))
	}) < 0
	if safe {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
