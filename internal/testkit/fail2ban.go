package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fail2ban is a real fail2ban-server started by a test, with its own
// socket, configuration and database (in memory) in a temporary directory.
// Its one jail, tollguard, reads Log with the shipped filter and records
// bans and unbans in a file instead of touching a firewall.
type Fail2ban struct {
	// Dir is the configuration directory (fail2ban's -c).
	Dir string
	// Log is the file the jail reads (tollguard's log.fail2ban_file).
	Log string
	// Client is the fail2ban-client command line for this server.
	Client  []string
	actions string
}

// StartFail2ban starts fail2ban-server with the filter file filter (the
// shipped tollguard.conf) in mode normal, and stops it when the test ends.
// Without fail2ban the test fails when CI is set and is skipped otherwise.
func StartFail2ban(t *testing.T, filter string) *Fail2ban {
	t.Helper()
	for _, tool := range []string{"fail2ban-server", "fail2ban-client"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s needs %s (scripts/install-test-deps.sh installs fail2ban)", t.Name(), tool)
			}
			t.Skipf("needs %s", tool)
		}
	}
	// A short directory: the socket path must fit in sun_path.
	dir, err := os.MkdirTemp("", "f2b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &Fail2ban{Dir: dir, Log: filepath.Join(dir, "tollguard-fail2ban.log"), actions: filepath.Join(dir, "actions.log")}
	f.Client = []string{"fail2ban-client", "-c", dir}
	body, err := os.ReadFile(filter)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"filter.d/tollguard.conf": string(body),
		"fail2ban.conf": fmt.Sprintf("[Definition]\nloglevel = INFO\nlogtarget = %s/server.log\nsocket = %s/s.sock\npidfile = %s/s.pid\ndbfile = :memory:\n",
			dir, dir, dir),
		"jail.conf": fmt.Sprintf("[DEFAULT]\nbackend = polling\n\n[tollguard]\nenabled = true\nfilter = tollguard[mode=normal]\n"+
			"logpath = %s\naction = record\nmaxretry = 1\nfindtime = 10m\nbantime = 1h\n", f.Log),
		"action.d/record.conf": fmt.Sprintf("[Definition]\nactionstart =\nactionstop =\nactioncheck =\n"+
			"actionban = echo \"ban <ip>\" >> %s\nactionunban = echo \"unban <ip>\" >> %s\n", f.actions, f.actions),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.Log, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("fail2ban-server", "-f", "-x", "-c", dir)
	var out strings.Builder
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = exec.Command("fail2ban-client", "-c", dir, "stop").Run()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for exec.Command("fail2ban-client", "-c", dir, "status", "tollguard").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("fail2ban-server did not start:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return f
}

// Actions returns the bans and unbans the jail carried out, one per line
// ("ban 198.51.100.7").
func (f *Fail2ban) Actions() []string {
	b, _ := os.ReadFile(f.actions)
	if s := strings.TrimSpace(string(b)); s != "" {
		return strings.Split(s, "\n")
	}
	return nil
}
