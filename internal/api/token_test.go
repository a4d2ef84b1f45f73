package api_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/api"
)

func TestTokenCreatedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tok1, path, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "admin.token") {
		t.Errorf("path = %s", path)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).Match(tok1) {
		t.Errorf("token %q is not 32 bytes of hex", tok1)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %04o, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("data_dir mode = %04o, want 0700", di.Mode().Perm())
	}
	tok2, _, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(tok1) != string(tok2) {
		t.Errorf("second start made a new token: %q then %q", tok1, tok2)
	}
	data, _ := os.ReadFile(path)
	if strings.TrimSpace(string(data)) != string(tok1) {
		t.Errorf("file holds %q, token is %q", data, tok1)
	}
}

func TestTokenFileRefused(t *testing.T) {
	good := strings.Repeat("ab", 32)
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
	}{
		{"group readable", good, 0o640, "chmod 600"},
		{"world readable", good, 0o604, "mode 0604"},
		{"too short", "abc", 0o600, "too short"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "admin.token")
			if err := os.WriteFile(p, []byte(c.content), c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, c.mode); err != nil { // umask may have narrowed it
				t.Fatal(err)
			}
			_, _, err := api.LoadOrCreateToken(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if _, err := api.New(api.Options{Listen: "127.0.0.1:0", DataDir: dir}); err == nil {
				t.Error("New started with a refused token file")
			}
		})
	}
}
