package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Layout says where the guard runs. With CPU set, the guard is started
// under taskset on that CPU and with GOMAXPROCS=1, so it has one core;
// otherwise it runs unpinned with the runtime's default GOMAXPROCS.
type Layout struct {
	// CPU is the core the guard is pinned to; negative means unpinned.
	CPU int
}

// String names the layout in reports.
func (l Layout) String() string {
	if l.CPU < 0 {
		return "guard unpinned (GOMAXPROCS default)"
	}
	return fmt.Sprintf("guard on cpu %d, GOMAXPROCS=1", l.CPU)
}

// daemon is one running guard process built from ./cmd/tollguard.
type daemon struct {
	cmd     *exec.Cmd
	bin     string
	dir     string
	sip     netip.AddrPort
	admin   string
	token   string
	logPath string
	done    chan error
}

// guardConfig renders the YAML config of a benchmark guard: one UDP
// listener on loopback, the responder as upstream, the admin API on a free
// port, and the SQLite store in dir. The load's sources never register,
// so flood.stranger_limit is raised to flood.limit: the throughput sweep
// sends up to 40 requests/s per source and measures capacity, not the
// stranger rule; every request still goes through the flood table.
func guardConfig(dir string, upstream netip.AddrPort, listen netip.Addr) string {
	return fmt.Sprintf(`data_dir: %q
log: {level: info, format: json}
sip:
  listen: ["udp://%s:0"]
  upstream: "udp://%s"
admin: {listen: "127.0.0.1:0"}
store: {driver: sqlite}
flood: {stranger_limit: 200}
`, filepath.Join(dir, "data"), listen, upstream)
}

// startDaemon starts bin serve in a fresh directory under parent and waits
// until its listeners are bound.
func startDaemon(ctx context.Context, bin, parent string, upstream netip.AddrPort, listen netip.Addr, l Layout) (*daemon, error) {
	dir, err := os.MkdirTemp(parent, "guard-")
	if err != nil {
		return nil, fmt.Errorf("bench: guard dir: %w", err)
	}
	cfgPath := filepath.Join(dir, "tollguard.yaml")
	if err := os.WriteFile(cfgPath, []byte(guardConfig(dir, upstream, listen)), 0o600); err != nil {
		return nil, fmt.Errorf("bench: writing guard config: %w", err)
	}
	logPath := filepath.Join(dir, "guard.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("bench: guard log: %w", err)
	}
	defer logf.Close()
	argv := []string{bin, "serve", "-c", cfgPath}
	env := os.Environ()
	if l.CPU >= 0 {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("bench: pinning the guard needs taskset: %w", err)
		}
		argv = append([]string{ts, "-c", strconv.Itoa(l.CPU)}, argv...)
		env = append(env, "GOMAXPROCS=1")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: starting guard: %w", err)
	}
	d := &daemon{cmd: cmd, bin: bin, dir: dir, logPath: logPath, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if ok, err := d.parseReady(); err != nil {
			d.stop()
			return nil, err
		} else if ok {
			break
		}
		select {
		case err := <-d.done:
			d.done <- err
			return nil, fmt.Errorf("bench: guard exited before ready (%v); log:\n%s", err, d.tail())
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, fmt.Errorf("bench: guard not ready after 20s; log:\n%s", d.tail())
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("bench: reading admin token: %w", err)
	}
	d.token = strings.TrimSpace(string(tok))
	return d, nil
}

// parseReady looks for the "tollguard ready" line in the JSON log.
func (d *daemon) parseReady() (bool, error) {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return false, fmt.Errorf("bench: reading guard log: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg   string   `json:"msg"`
			SIP   []string `json:"sip"`
			Admin string   `json:"admin"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "tollguard ready" {
			continue
		}
		for _, s := range rec.SIP {
			if rest, ok := strings.CutPrefix(s, "udp://"); ok {
				ap, err := netip.ParseAddrPort(rest)
				if err != nil {
					return false, fmt.Errorf("bench: guard SIP address %q: %w", s, err)
				}
				d.sip = ap
			}
		}
		if !d.sip.IsValid() || rec.Admin == "" {
			return false, fmt.Errorf("bench: ready line without udp listener or admin address: %s", sc.Text())
		}
		d.admin = "http://" + rec.Admin
		return true, nil
	}
	return false, nil
}

// tail returns the end of the guard's log for error messages.
func (d *daemon) tail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// pid returns the guard's process id (the taskset exec keeps it).
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// ban bans ip through the real CLI client and admin API.
func (d *daemon) ban(ctx context.Context, ip netip.Addr) error {
	cmd := exec.CommandContext(ctx, d.bin, "ban", "--admin", d.admin,
		"--token-file", filepath.Join(d.dir, "data", "admin.token"), "--for", "1h", "--reason", "benchmark flood source", ip.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: tollguard ban %s: %w: %s", ip, err, out)
	}
	return nil
}

// metrics scrapes the guard's /metrics.
func (d *daemon) metrics(ctx context.Context) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.admin+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics request: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: scraping metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: scraping metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// stop sends SIGTERM, waits up to 10 s for a clean exit (the store drains),
// then kills the process.
func (d *daemon) stop() error {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 0 {
			return nil
		}
		return err
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		return errors.New("bench: guard did not stop within 10s after SIGTERM; killed")
	}
}
