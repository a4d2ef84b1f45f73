package testpeer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// GuardOptions describes one `tollguard serve` process started by
// StartGuard.
type GuardOptions struct {
	// Bin is the tollguard binary (required): tests build it once, see
	// test/integration's TestMain.
	Bin string
	// Name names the guard in failure output ("a", "node-2").
	Name string
	// Addr is the guard's loopback address; zero picks a fresh one.
	Addr netip.Addr
	// Config is the body of the config file, written after the lines the
	// launcher owns: data_dir (a directory of the test's) and admin.listen
	// (Addr and a free port). It must not set those two; it usually sets
	// sip.listen on Addr (see Guard.SIP), the upstream, the rules and the
	// cluster or store section under test. Build it after choosing Addr
	// (for example with LoopbackAddr) so it can name the guard's own
	// address.
	Config string
}

// Guard is a tollguard daemon run as its own process, as an operator runs
// it: a config file, `tollguard serve -c FILE`, the admin API for health
// and the tollguard CLI for questions. Tests of several nodes (a cluster
// over Redis, nodes sharing one PostgreSQL store) start one Guard per node.
//
//	g := testpeer.StartGuard(t, testpeer.GuardOptions{Bin: bin, Name: "a", Addr: addr, Config: cfg})
//	out, err := g.CLI("bans", "--json")
//
// StartGuard returns once /healthz answers 200; the test's cleanup stops
// the process with SIGTERM (SIGKILL after 10 s) and, when the test failed,
// logs the config and the tail of the daemon's log. Stop, Kill and Start
// let a test take a node away and bring it back on the same config and
// data directory. The methods are safe for concurrent use except Start,
// Stop and Kill, which the test calls from one goroutine.
type Guard struct {
	// Name is GuardOptions.Name.
	Name string
	// Addr is the guard's loopback address.
	Addr netip.Addr
	// Admin is the admin API's address.
	Admin netip.AddrPort
	// DataDir is the guard's data_dir; ConfigFile its config file.
	DataDir, ConfigFile string

	t      testing.TB
	bin    string
	log    *logBuffer
	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// StartGuard writes the config, starts the daemon and waits until it is
// healthy (20 s at most; the test fails otherwise).
func StartGuard(t testing.TB, opts GuardOptions) *Guard {
	t.Helper()
	if opts.Bin == "" {
		t.Fatal("testpeer: StartGuard needs the tollguard binary (GuardOptions.Bin)")
	}
	if !opts.Addr.IsValid() {
		opts.Addr = LoopbackAddr(t)
	}
	dir := t.TempDir()
	g := &Guard{Name: opts.Name, Addr: opts.Addr, Admin: netip.AddrPortFrom(opts.Addr, uint16(FreePort(t, opts.Addr))),
		DataDir: filepath.Join(dir, "data"), ConfigFile: filepath.Join(dir, "tollguard.yaml"), t: t, bin: opts.Bin, log: &logBuffer{}}
	cfg := fmt.Sprintf("data_dir: %q\nadmin: {listen: %q}\n", g.DataDir, g.Admin.String()) + opts.Config
	if err := os.WriteFile(g.ConfigFile, []byte(cfg), 0o600); err != nil {
		t.Fatalf("testpeer: writing guard config: %v", err)
	}
	g.Start()
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			t.Logf("guard %s config:\n%s\nguard %s log:\n%s", g.Name, cfg, g.Name, tail(g.log.String(), 48<<10))
		}
	})
	return g
}

// SIP returns Addr on port 5060, where configs usually listen.
func (g *Guard) SIP() netip.AddrPort { return netip.AddrPortFrom(g.Addr, 5060) }

// Pid is the running daemon's process ID (0 when it is not running).
func (g *Guard) Pid() int {
	if g.cmd == nil || g.cmd.Process == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// Log returns everything the daemon wrote so far (all its starts).
func (g *Guard) Log() string { return g.log.String() }

// Start starts the daemon again after Stop or Kill (StartGuard starts it
// the first time) and waits until it is healthy.
func (g *Guard) Start() {
	g.t.Helper()
	if g.cmd != nil {
		g.t.Fatalf("testpeer: guard %s already running", g.Name)
	}
	if g.starts > 0 {
		fmt.Fprintf(g.log, "\n===== start %d =====\n", g.starts+1)
	}
	g.starts++
	g.cmd = exec.Command(g.bin, "serve", "-c", g.ConfigFile)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		g.t.Fatalf("testpeer: starting guard %s: %v", g.Name, err)
	}
	g.exited = make(chan struct{})
	cmd, exited := g.cmd, g.exited
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	url := "http://" + g.Admin.String() + "/healthz"
	for {
		select {
		case <-exited:
			g.cmd = nil
			g.t.Fatalf("testpeer: guard %s exited during start-up:\n%s", g.Name, tail(g.log.String(), 16<<10))
		default:
		}
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("testpeer: guard %s not healthy within 20s (last: %v):\n%s", g.Name, err, tail(g.log.String(), 16<<10))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Stop sends SIGTERM and waits for the daemon to exit (SIGKILL, and a
// test error, after 10 s). It does nothing when the daemon is not running.
func (g *Guard) Stop() {
	if g.cmd == nil {
		return
	}
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(10 * time.Second):
			g.t.Errorf("testpeer: guard %s did not stop within 10s of SIGTERM", g.Name)
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
			<-g.exited
		}
	}
	g.cmd = nil
}

// Kill ends the daemon with SIGKILL, as a crash or a power cut would: no
// shutdown, no final commit.
func (g *Guard) Kill() {
	if g.cmd == nil {
		return
	}
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
	<-g.exited
	g.cmd = nil
}

// CLI runs `tollguard ARGS -c CONFIG` against this guard (15 s at most)
// and returns its combined output; the error includes the output.
func (g *Guard) CLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args = append(args, "-c", g.ConfigFile)
	out, err := exec.CommandContext(ctx, g.bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tollguard %s (guard %s): %w\n%s", strings.Join(args, " "), g.Name, err, out)
	}
	return string(out), nil
}

// GuardBan is one ban as `tollguard bans --json` prints it.
type GuardBan struct {
	Scope   string    `json:"scope"`
	Prefix  string    `json:"prefix"`
	Account string    `json:"account"`
	Rule    string    `json:"rule"`
	Origin  string    `json:"origin"`
	At      time.Time `json:"at"`
}

// Bans returns the bans in force on this guard (`tollguard bans --json`).
func (g *Guard) Bans() ([]GuardBan, error) {
	out, err := g.CLI("bans", "--json")
	if err != nil {
		return nil, err
	}
	var sum struct {
		Bans []GuardBan `json:"bans"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		return nil, fmt.Errorf("parsing `tollguard bans --json` of guard %s: %w\n%s", g.Name, err, out)
	}
	return sum.Bans, nil
}

// BansOf returns the bans in force whose prefix covers addr.
func (g *Guard) BansOf(addr netip.Addr) ([]GuardBan, error) {
	all, err := g.Bans()
	var out []GuardBan
	for _, b := range all {
		if p, err := netip.ParsePrefix(b.Prefix); err == nil && p.Contains(addr) {
			out = append(out, b)
		}
	}
	return out, err
}

// WaitBanned polls until addr is banned on this guard, or timeout passes;
// it returns addr's bans (empty at the timeout).
func (g *Guard) WaitBanned(addr netip.Addr, timeout time.Duration) []GuardBan {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := g.BansOf(addr)
		if err != nil {
			g.t.Fatal(err)
		}
		if len(b) > 0 || time.Now().After(deadline) {
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Post sends body as JSON to the admin API at path with the guard's admin
// token (data_dir/admin.token) and returns the status code.
func (g *Guard) Post(path string, body any) (int, error) {
	tok, err := os.ReadFile(filepath.Join(g.DataDir, "admin.token"))
	if err != nil {
		return 0, fmt.Errorf("reading the admin token of guard %s: %w", g.Name, err)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+g.Admin.String()+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s on guard %s: %w", path, g.Name, err)
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// Metric reads one sample of the guard's /metrics: name with exactly the
// label set labels (`stream="failures"`), or without labels when empty;
// 0 when absent.
func (g *Guard) Metric(name, labels string) (float64, error) {
	res, err := http.Get("http://" + g.Admin.String() + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("reading metrics of guard %s: %w", g.Name, err)
	}
	defer res.Body.Close()
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == want {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, sc.Err()
}

// LogTimes returns the times of the daemon's log lines (text format)
// that contain every one of parts, oldest first.
func (g *Guard) LogTimes(parts ...string) []time.Time {
	var out []time.Time
	for _, line := range strings.Split(g.log.String(), "\n") {
		ok := strings.HasPrefix(line, "time=")
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if !ok {
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out = append(out, at)
		}
	}
	return out
}
