package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
)

// withUmask runs the rest of the test under umask m (process-wide: the
// store's tests do not run in parallel).
func withUmask(t *testing.T, m int) {
	old := syscall.Umask(m)
	t.Cleanup(func() { syscall.Umask(old) })
}

func perm(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// A store started under umask 0 still creates its key, database, -wal and
// -shm 0600 and its data directory 0700.
func TestStoreFilesArePrivate(t *testing.T) {
	withUmask(t, 0)
	b := newBackend(t, "sqlite")
	b.dir = filepath.Join(b.dir, "data")
	s := b.open(t, Options{})
	s.Record(&event.Request{Meta: event.Meta{Time: t0, Source: ap("203.0.113.7:5060")}, SIP: event.SIP{Method: "REGISTER"}})
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, b.dir); got != 0o700 {
		t.Errorf("data_dir mode %04o, want 0700", got)
	}
	db := filepath.Join(b.dir, "tollguard.db")
	for _, p := range []string{filepath.Join(b.dir, KeyFile), db, db + "-wal", db + "-shm"} {
		if got := perm(t, p); got != 0o600 {
			t.Errorf("%s mode %04o, want 0600", filepath.Base(p), got)
		}
	}
}

// A file of an earlier version left 0644 stops the start with the chmod
// to run; after it, the store opens with every record intact.
func TestOpenRefusesWideFiles(t *testing.T) {
	for _, name := range []string{KeyFile, "tollguard.db", "tollguard.db-wal", "tollguard.db-shm"} {
		t.Run(name, func(t *testing.T) {
			b := newBackend(t, "sqlite")
			clk := &clock{t: t0}
			chained(t, b, clk)
			p := filepath.Join(b.dir, name)
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				// SQLite removed it at the clean close; an earlier version
				// could have left one behind after a crash.
				if err := os.WriteFile(p, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				_, err := Open(context.Background(), b.cfg, b.dir, Options{ReadOnly: ro})
				if err == nil || !strings.Contains(err.Error(), "run `chmod 600 "+p+"`") || !strings.Contains(err.Error(), "mode 0644") {
					t.Fatalf("read-only %v: Open with %s 0644: %v", ro, name, err)
				}
			}
			if got := perm(t, p); got != 0o644 {
				t.Errorf("the refused file was changed to %04o", got)
			}
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
			s := b.open(t, Options{ReadOnly: true})
			rep, err := soleChain(context.Background(), s)
			if err != nil || !rep.OK || rep.Records != 20 {
				t.Fatalf("after chmod 600: %+v, %v", rep, err)
			}
		})
	}
}

// Every wide file is named in one message with one chmod.
func TestOpenNamesEveryWideFile(t *testing.T) {
	b := newBackend(t, "sqlite")
	chained(t, b, &clock{t: t0})
	key, db := filepath.Join(b.dir, KeyFile), filepath.Join(b.dir, "tollguard.db")
	for _, p := range []string{key, db} {
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Open(context.Background(), b.cfg, b.dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "run `chmod 600 "+key+" "+db+"`") {
		t.Fatalf("Open: %v", err)
	}
}

func TestOpenChecksDataDir(t *testing.T) {
	cases := []struct {
		name string
		mode fs.FileMode
		ok   bool
	}{
		{"private", 0o700, true},
		{"listable, as systemd's StateDirectory makes it", 0o755, true},
		{"group may write", 0o770, false},
		{"anyone may write", 0o777, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBackend(t, "sqlite")
			if err := os.Chmod(b.dir, c.mode); err != nil {
				t.Fatal(err)
			}
			s, err := Open(context.Background(), b.cfg, b.dir, Options{})
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), "run `chmod 700 "+b.dir+"`") {
				t.Fatalf("Open: %v", err)
			}
		})
	}
}

func TestCheckBackupName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"tollguard.db", true},
		{"tollguard-2026-11-30T03.db", true},
		{"A_b-1.bak", true},
		{"x..db", true},
		{strings.Repeat("a", 128), true},
		{"", false},
		{strings.Repeat("a", 129), false},
		{"..", false},
		{".", false},
		{".hidden.db", false},
		{"-rf", false},
		{"_x", false},
		{"../x.db", false},
		{"data/../x.db", false},
		{"backups/x.db", false},
		{"/tmp/x.db", false},
		{"/dev/null", false},
		{`..\x.db`, false},
		{"x\x00.db", false},
		{"x.db\n", false},
		{"x\r.db", false},
		{"x\x1b[2J.db", false},
		{"a b.db", false},
		{"x\u202e.db", false},
		{"x\u2215y.db", false},  // division slash, looks like '/'
		{"x\uff0fy.db", false},  // fullwidth solidus
		{"\uff0e\uff0e", false}, // fullwidth full stops, look like ".."
		{"tollguard\u0430.db", false},
		{"~root", false},
		{"$HOME", false},
	}
	for _, c := range cases {
		err := CheckBackupName(c.name)
		if (err == nil) != c.ok {
			t.Errorf("CheckBackupName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// backupStore returns a store with 20 chained records and an extra
// event, and the directory it backs up into.
func backupStore(t *testing.T, cfg func(*config.Store)) (*sqlStore, backend) {
	t.Helper()
	b := newBackend(t, "sqlite")
	if cfg != nil {
		cfg(&b.cfg)
	}
	clk := &clock{t: t0}
	chained(t, b, clk)
	s := b.open(t, Options{Now: clk.Now})
	s.Record(&event.Request{Meta: event.Meta{Time: t0, Source: ap("203.0.113.7:5060")}})
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, b
}

func TestBackupWritesAPrivateCopyInTheBackupDir(t *testing.T) {
	s, b := backupStore(t, nil)
	withUmask(t, 0)
	to, err := s.Backup(context.Background(), "copy.db")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(b.dir, BackupDirName)
	if to != filepath.Join(dir, "copy.db") {
		t.Errorf("backup at %s, want it in %s", to, dir)
	}
	if got := perm(t, to); got != 0o600 {
		t.Errorf("backup mode %04o, want 0600", got)
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("backup dir mode %04o, want 0700", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("backup dir holds %d entries, want only the backup (no temporary left)", len(ents))
	}
	if _, err := s.Backup(context.Background(), "copy.db"); !errors.Is(err, ErrBackupRefused) {
		t.Errorf("second backup to the same name: %v, want refused", err)
	}
	c := b
	c.cfg.DSN = to
	cs := c.open(t, Options{ReadOnly: true})
	rep, err := soleChain(context.Background(), cs)
	if err != nil || !rep.OK || rep.Records != 21 {
		t.Fatalf("backup copy: %+v, %v", rep, err)
	}
}

func TestBackupToConfiguredDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "backups")
	s, _ := backupStore(t, func(c *config.Store) { c.BackupDir = dir })
	to, err := s.Backup(context.Background(), "x.db")
	if err != nil || to != filepath.Join(dir, "x.db") {
		t.Fatalf("Backup = %s, %v", to, err)
	}
	if got := perm(t, to); got != 0o600 {
		t.Errorf("backup mode %04o, want 0600", got)
	}
}

// Whatever already has the name, or whatever the name tries, nothing
// outside the backup directory is written and nothing is overwritten.
func TestBackupRefusals(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "victim")
	cases := []struct {
		name  string
		plant func(t *testing.T, dir string) // before the backup, in the backup dir
		bname string
	}{
		{"traversal", nil, "../x.db"},
		{"traversal inside a path", nil, "data/../x.db"},
		{"absolute path outside", nil, outside},
		{"absolute path inside", func(t *testing.T, dir string) {}, "ABS"},
		{"NUL byte", nil, "x\x00.db"},
		{"dot-dot", nil, ".."},
		{"device", nil, "/dev/null"},
		{"very long name", nil, strings.Repeat("x", 4096)},
		{"look-alike slash", nil, "..\u2215x.db"},
		{"existing file", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "taken.db"), []byte("keep"), 0o600))
		}, "taken.db"},
		{"symlink to a file outside", func(t *testing.T, dir string) {
			must(t, os.WriteFile(outside, []byte("keep"), 0o644))
			must(t, os.Symlink(outside, filepath.Join(dir, "taken.db")))
		}, "taken.db"},
		{"dangling symlink to a path outside", func(t *testing.T, dir string) {
			must(t, os.Symlink(outside+".new", filepath.Join(dir, "taken.db")))
		}, "taken.db"},
		{"symlink to a device", func(t *testing.T, dir string) {
			must(t, os.Symlink("/dev/null", filepath.Join(dir, "taken.db")))
		}, "taken.db"},
		{"FIFO", func(t *testing.T, dir string) {
			must(t, syscall.Mkfifo(filepath.Join(dir, "taken.db"), 0o600))
		}, "taken.db"},
		{"directory", func(t *testing.T, dir string) {
			must(t, os.Mkdir(filepath.Join(dir, "taken.db"), 0o700))
		}, "taken.db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, b := backupStore(t, nil)
			dir := filepath.Join(b.dir, BackupDirName)
			must(t, os.Mkdir(dir, 0o700))
			if c.plant != nil {
				c.plant(t, dir)
			}
			if c.bname == "ABS" {
				c.bname = filepath.Join(dir, "x.db")
			}
			before := listing(t, dir)
			_, err := s.Backup(context.Background(), c.bname)
			if !errors.Is(err, ErrBackupRefused) {
				t.Fatalf("Backup(%q) = %v, want refused", c.bname, err)
			}
			if after := listing(t, dir); after != before {
				t.Errorf("backup dir changed: %s -> %s", before, after)
			}
			if data, err := os.ReadFile(outside); err == nil && string(data) != "keep" {
				t.Errorf("file outside overwritten: %q", data)
			}
			if _, err := os.Lstat(outside + ".new"); err == nil {
				t.Error("a file was created through the dangling link")
			}
			if _, err := os.Lstat(filepath.Join(b.dir, "x.db")); err == nil {
				t.Error("x.db written into data_dir")
			}
		})
	}
}

// With store.backup_dir set to data_dir, the names of the database's side
// files and of the other files there are refused.
func TestBackupIntoDataDir(t *testing.T) {
	s, b := backupStore(t, nil)
	s.backupDir = b.dir // as store.backup_dir: <data_dir> makes it
	for _, name := range []string{"tollguard.db", "tollguard.db-wal", "tollguard.db-journal", "tollguard.db-shm", KeyFile} {
		if _, err := s.Backup(context.Background(), name); !errors.Is(err, ErrBackupRefused) {
			t.Errorf("Backup(%q) into data_dir: %v, want refused", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.dir, "tollguard.db-journal")); err == nil {
		t.Error("a backup was written as the database's journal")
	}
	if _, err := s.Backup(context.Background(), "copy.db"); err != nil {
		t.Errorf("an unrelated name: %v", err)
	}
}

func TestBackupRefusesUnusableDir(t *testing.T) {
	cases := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			must(t, os.WriteFile(p, nil, 0o600))
			return p
		}},
		{"writable by others", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "shared")
			must(t, os.Mkdir(p, 0o700))
			must(t, os.Chmod(p, 0o777))
			return p
		}},
		{"under a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			must(t, os.WriteFile(p, nil, 0o600))
			return filepath.Join(p, "backups")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			s, _ := backupStore(t, func(cfg *config.Store) { cfg.BackupDir = dir })
			if _, err := s.Backup(context.Background(), "x.db"); !errors.Is(err, ErrBackupRefused) {
				t.Fatalf("Backup into %s: %v, want refused", c.name, err)
			}
		})
	}
}

func TestBackupUnsupportedOnPostgres(t *testing.T) {
	b := newBackend(t, "postgres")
	s := b.open(t, Options{})
	if _, err := s.Backup(context.Background(), "x.db"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Backup on postgres: %v, want ErrUnsupported", err)
	}
	if _, err := os.Stat(filepath.Join(b.dir, BackupDirName)); err == nil {
		t.Error("postgres backup created a backup directory")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// listing names dir's entries and their types.
func listing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		b.WriteString(e.Name() + ":" + e.Type().String() + " ")
	}
	return b.String()
}

// The key is checked whatever the driver.
func TestOpenRefusesWideKeyOnEveryDriver(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		b.open(t, Options{}).Close()
		key := filepath.Join(b.dir, KeyFile)
		must(t, os.Chmod(key, 0o604))
		_, err := Open(context.Background(), b.cfg, b.dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "run `chmod 600 "+key+"`") {
			t.Fatalf("Open with a 0604 key: %v", err)
		}
	})
}
