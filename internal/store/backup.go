package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollguard/tollguard/internal/config"
)

// BackupDirName is the backup directory inside data_dir when
// store.backup_dir is empty.
const BackupDirName = "backups"

// maxBackupName is the longest backup file name, in bytes.
const maxBackupName = 128

// ErrBackupRefused wraps every reason a backup name is not used: a bad
// name, a name already taken (by a file, a link, a FIFO or a device), a
// backup directory that is missing, not a directory or writable by others.
// Callers facing a client should answer with one message for all of them,
// so the answer does not tell which paths exist.
var ErrBackupRefused = errors.New("backup refused")

// BackupDir returns the directory backups are written to: store.backup_dir,
// or <data_dir>/backups.
func BackupDir(cfg config.Store, dataDir string) string {
	if cfg.BackupDir != "" {
		return cfg.BackupDir
	}
	return filepath.Join(dataDir, BackupDirName)
}

// CheckBackupName reports whether name can name a backup: a plain file
// name of ASCII letters, digits, '.', '_' and '-', starting with a letter
// or a digit, at most 128 bytes. So it is never a path (no separator, no
// "..", nothing absolute), never hidden, never an option, and holds no NUL,
// control, bidi or look-alike character (a full-width solidus looks like a
// slash in a listing): non-ASCII names are refused rather than judged.
func CheckBackupName(name string) error {
	if name == "" {
		return errors.New("backup name is empty")
	}
	if len(name) > maxBackupName {
		return fmt.Errorf("backup name is longer than %d bytes", maxBackupName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return errors.New("backup name must be a file name of letters, digits, '.', '_' and '-', starting with a letter or a digit")
		}
	}
	return nil
}

// Backup implements Store.
//
// The copy is written into a fresh private directory beside the target
// (VACUUM INTO a file the store created 0600), synced, and only then
// hard-linked to its name, which fails if anything (a file, a symlink, a
// FIFO) has the name meanwhile: a partial backup never appears under the
// name, and nothing already there is overwritten or followed.
func (s *sqlStore) Backup(ctx context.Context, name string) (string, error) {
	if s.db.backup == nil {
		return "", fmt.Errorf("backup: use pg_dump for the postgres driver: %w", ErrUnsupported)
	}
	if err := CheckBackupName(name); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBackupRefused, err)
	}
	dir := s.backupDir
	if err := mkdirPrivate(dir); err != nil {
		return "", fmt.Errorf("%w: creating backup directory: %w", ErrBackupRefused, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBackupRefused, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%w: backup directory %s is not a directory", ErrBackupRefused, dir)
	}
	// Someone else who may write the directory could swap the private
	// directory below for one holding a link.
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return "", fmt.Errorf("%w: backup directory %s has mode %04o, group or others may write it: run `chmod 700 %s`",
			ErrBackupRefused, dir, perm, shellQuote(dir))
	}
	to := filepath.Join(dir, name)
	// With store.backup_dir set to the database's directory, a missing
	// tollguard.db-wal or -journal is a free name; SQLite would read it.
	if sidecarOf(to, s.dbPath) {
		return "", fmt.Errorf("%w: %s would be a side file of the database", ErrBackupRefused, to)
	}
	if _, err := os.Lstat(to); err == nil {
		return "", fmt.Errorf("%w: %s: %w", ErrBackupRefused, to, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: %w", ErrBackupRefused, err)
	}
	tmpDir, err := os.MkdirTemp(dir, ".backup-")
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "copy.db")
	if err := createPrivate(tmp); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	// VACUUM INTO writes into an existing file only when it is empty.
	if err := s.db.backup(ctx, tmp); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	if err := syncPrivate(tmp); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	if err := os.Link(tmp, to); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("%w: %w", ErrBackupRefused, err)
		}
		return "", fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return "", fmt.Errorf("backup: syncing %s: %w", dir, err)
		}
	}
	return to, nil
}

// syncPrivate sets path's mode to 0600 again (whatever wrote it) and
// flushes it to disk.
func syncPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = errors.Join(f.Chmod(privateFileMode), f.Sync())
	return errors.Join(err, f.Close())
}

// sidecarOf reports whether path names a file SQLite keeps beside the
// database db (db-wal, db-shm, db-journal, …).
func sidecarOf(path, db string) bool {
	if db == "" {
		return false
	}
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(db)
	return err1 != nil || err2 != nil || strings.HasPrefix(p, d+"-")
}
