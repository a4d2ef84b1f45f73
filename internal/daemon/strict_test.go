package daemon

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/config"
)

// serve --strict refuses to start on a FreeSWITCH configuration with
// findings of severity high or above, before opening anything.
func TestServeStrictRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flawed, _ := filepath.Abs("../freeswitch/audit/testdata/flawed")
	cases := []struct {
		name, yaml, want string
	}{
		{"flawed tree", "data_dir: " + dir + "/data\nfreeswitch: {conf_dir: " + flawed + "}\n", "refusing to start: 16 findings of severity high or above"},
		{"no conf_dir", "data_dir: " + dir + "/data\n", "--strict needs freeswitch.conf_dir"},
		{"unreadable conf_dir", "data_dir: " + dir + "/data\nfreeswitch: {conf_dir: " + dir + "/none}\n", "auditing " + dir + "/none"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := write(tc.name+".yaml", tc.yaml)
			var out, errb bytes.Buffer
			code := cli.Main(context.Background(), []string{"serve", "--strict", "-c", cfg}, &out, &errb, Commands()...)
			if code != cli.ExitError || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, errb.String(), tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
				t.Errorf("serve created its data directory before refusing")
			}
		})
	}
}

func TestStrictAuditPassesTheExample(t *testing.T) {
	cfg := config.Default()
	cfg.FreeSWITCH.ConfDir = "../../examples/freeswitch"
	var errb bytes.Buffer
	e := &cli.Env{Stdout: &errb, Stderr: &errb, Now: time.Now, Loc: time.UTC}
	if err := strictAudit(e, cfg, true); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
}
