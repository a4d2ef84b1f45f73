package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every command finds its config the same way: -c wins, else the default
// file when it exists, else the built-in defaults.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	def := filepath.Join(dir, "tollguard.yaml")
	explicit := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(explicit, []byte("data_dir: /srv/other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, used, err := Resolve("", def)
	if err != nil || used != "" || cfg.DataDir != Default().DataDir {
		t.Fatalf("no file: %v %q %v; want the defaults", cfg.DataDir, used, err)
	}
	if err := os.WriteFile(def, []byte("data_dir: /srv/default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, used, err = Resolve("", def); err != nil || used != def || cfg.DataDir != "/srv/default" {
		t.Fatalf("default file: %v %q %v", cfg, used, err)
	}
	if cfg, used, err = Resolve(explicit, def); err != nil || used != explicit || cfg.DataDir != "/srv/other" {
		t.Fatalf("-c FILE: %v %q %v", cfg, used, err)
	}
	if _, _, err = Resolve(filepath.Join(dir, "missing.yaml"), def); err == nil {
		t.Fatal("an explicit file that does not exist was not an error")
	}
	if err := os.WriteFile(def, []byte("no_such_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err = Resolve("", def); err == nil || !strings.Contains(err.Error(), def) {
		t.Fatalf("bad default file: %v; want an error naming it", err)
	}
}
