package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/store"
)

// The daemon's files are private, and `tollguard backup NAME` through the
// real admin API lands a 0600 copy in store.backup_dir and nowhere else.
func TestBackupThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Store.BackupDir = filepath.Join(dir, "backups")
	cfg.SIP.Listen = nil
	cfg.Admin.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(t.Context())
	g, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-g.Ready()
	cfgFile := filepath.Join(dir, "tollguard.yaml")
	yaml := "data_dir: " + cfg.DataDir + "\nadmin:\n  listen: \"" + g.AdminAddr().String() + "\"\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Main(t.Context(), args, &out, &errb, Commands()...)
		return code, out.String(), errb.String()
	}

	want := filepath.Join(cfg.Store.BackupDir, "nightly.db")
	if code, out, errb := run("backup", "-c", cfgFile, "nightly.db"); code != 0 || out != "backup written to "+want+"\n" {
		t.Fatalf("backup: exit %d %q %q", code, out, errb)
	}
	for p, mode := range map[string]os.FileMode{
		want: 0o600, cfg.Store.BackupDir: 0o700, cfg.DataDir: 0o700,
		filepath.Join(cfg.DataDir, store.KeyFile): 0o600, filepath.Join(cfg.DataDir, "tollguard.db"): 0o600,
		filepath.Join(cfg.DataDir, "admin.token"): 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %04o", p, fi, err, mode)
		}
	}
	if code, _, errb := run("backup", "-c", cfgFile, "nightly.db"); code == 0 || !strings.Contains(errb, "backup refused") {
		t.Errorf("backup over an existing one: exit %d %q", code, errb)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, store.BackupDirName)); err == nil {
		t.Error("a backup directory was made in data_dir although store.backup_dir is set")
	}
}

// A data_dir an earlier version left with a 0644 key and database does not
// start, and says what to run.
func TestRefusesWideStoreFilesAtStart(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = nil
	cfg.Admin.Listen = "127.0.0.1:0"
	g, err := New(t.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	g.st.Close()
	key, db := filepath.Join(cfg.DataDir, store.KeyFile), filepath.Join(cfg.DataDir, "tollguard.db")
	for _, p := range []string{key, db} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = New(t.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "run `chmod 600 "+key+" "+db+"`") {
		t.Fatalf("start with 0644 store files: %v", err)
	}
}
