package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/testpeer"
)

// guardOptions configures one tollguard daemon under test.
type guardOptions struct {
	// Addr is the guard's address; zero picks a fresh one.
	Addr netip.Addr
	// Upstream is the PBX (Kamailio), reached over UDP.
	Upstream netip.AddrPort
	// PKI, when set, adds a tls:// listener on port 5061.
	PKI *testpeer.PKI
	// MutualTLS sets sip.tls.client_ca to the PKI's CA.
	MutualTLS bool
	// Extra is YAML appended to the generated config.
	Extra string
	// DefaultRules runs the detectors with the shipped defaults instead of
	// defaultJail, as an operator who changed nothing would.
	DefaultRules bool
	// Fail2banFile, when set, is log.fail2ban_file.
	Fail2banFile string
	// SIPExtra is YAML added inside the generated sip: section, indented
	// two spaces per line ("  max_connections: 100\n").
	SIPExtra string
	// ExtraListen are listener URLs added to sip.listen.
	ExtraListen []string
	// Greylist keeps greylisting on, as shipped. Off otherwise
	// (greylistOff): most tests here are about a detector, and their
	// attack tools never retransmit, so greylisting would hold every
	// request and the detector would never see the PBX's answers.
	Greylist bool
}

// guard is a running tollguard serve process.
type guard struct {
	t testing.TB
	// Addr is the address every SIP listener binds (port 5060 UDP and TCP,
	// 5061 TLS).
	Addr      netip.Addr
	Admin     netip.AddrPort
	DataDir   string
	Config    string
	log       *syncBuffer
	cmd       *exec.Cmd
	exited    chan struct{}
	restarted int
}

// SIP returns the UDP/TCP listener address.
func (g *guard) SIP() netip.AddrPort { return netip.AddrPortFrom(g.Addr, 5060) }

// TLS returns the TLS listener address.
func (g *guard) TLS() netip.AddrPort { return netip.AddrPortFrom(g.Addr, 5061) }

// defaultJail bans an address (banmode ip) after 3 failures within a
// minute, for 10 minutes, so a banned address can be probed with any
// request.
const defaultJail = `jail:
  register_failure:
    - {findtime: 60s, maxretry: 3, banmode: ip, bantime: 10m}
enumeration: {findtime: 60s, max_accounts: 5, bantime: 1h}
`

// greylistOff turns greylisting off for tests whose subject is a
// detector (see guardOptions.Greylist).
const greylistOff = "# the subject is a detector: its attack tools never retransmit\ngreylist: {enabled: false}\n"

// startGuard writes a config, starts `tollguard serve -c FILE`, waits for
// /healthz to answer 200 and registers a cleanup that stops the daemon
// (and prints its log when the test failed).
func startGuard(t testing.TB, opts guardOptions) *guard {
	t.Helper()
	requireBinary(t)
	addr := opts.Addr
	if !addr.IsValid() {
		addr = testpeer.LoopbackAddr(t)
	}
	dir := t.TempDir()
	g := &guard{
		t:       t,
		Addr:    addr,
		Admin:   netip.AddrPortFrom(addr, uint16(testpeer.FreePort(t, addr))),
		DataDir: filepath.Join(dir, "data"),
		Config:  filepath.Join(dir, "tollguard.yaml"),
		log:     &syncBuffer{},
	}
	listen := []string{"udp://" + g.SIP().String(), "tcp://" + g.SIP().String()}
	tlsConf := ""
	if opts.PKI != nil {
		listen = append(listen, "tls://"+g.TLS().String())
		tlsConf = fmt.Sprintf("  tls: {cert: %q, key: %q, client_ca: %q}\n", opts.PKI.ServerCert, opts.PKI.ServerKey, "")
		if opts.MutualTLS {
			tlsConf = fmt.Sprintf("  tls: {cert: %q, key: %q, client_ca: %q}\n", opts.PKI.ServerCert, opts.PKI.ServerKey, opts.PKI.CAFile)
		}
	}
	listen = append(listen, opts.ExtraListen...)
	quoted := make([]string, len(listen))
	for i, l := range listen {
		quoted[i] = fmt.Sprintf("%q", l)
	}
	cfg := fmt.Sprintf("data_dir: %q\nlog: {level: debug, fail2ban_file: %q}\nsip:\n  listen: [%s]\n  upstream: %q\n%s%sadmin: {listen: %q}\n",
		g.DataDir, opts.Fail2banFile, strings.Join(quoted, ", "), "udp://"+opts.Upstream.String(), tlsConf, opts.SIPExtra, g.Admin.String())
	if !opts.DefaultRules && !strings.Contains(opts.Extra, "jail:") {
		cfg += defaultJail
	}
	if !opts.Greylist && !strings.Contains(opts.Extra, "greylist:") {
		cfg += greylistOff
	}
	cfg += opts.Extra
	if err := os.WriteFile(g.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g.start()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("tollguard config:\n%s\ntollguard log (%d restarts):\n%s", cfg, g.restarted, tailString(g.log.String(), 64<<10))
		}
	})
	return g
}

func (g *guard) start() {
	g.t.Helper()
	g.cmd = exec.Command(tollguardBin, "serve", "-c", g.Config)
	g.cmd.Stdout = g.log
	g.cmd.Stderr = g.log
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		g.t.Fatalf("starting tollguard: %v", err)
	}
	g.exited = make(chan struct{})
	cmd, exited := g.cmd, g.exited
	go func() { _ = cmd.Wait(); close(exited) }()

	deadline := time.Now().Add(20 * time.Second)
	url := "http://" + g.Admin.String() + "/healthz"
	for {
		select {
		case <-exited:
			g.t.Fatalf("tollguard exited during start-up:\n%s", tailString(g.log.String(), 16<<10))
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
			g.t.Fatalf("tollguard not healthy within 20s (last: %v):\n%s", err, tailString(g.log.String(), 16<<10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 10s).
func (g *guard) stop() {
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
			g.t.Errorf("tollguard did not stop within 10s of SIGTERM")
			_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
			<-g.exited
		}
	}
	g.cmd = nil
}

// restart stops the daemon and starts it again on the same config and
// data directory.
func (g *guard) restart() {
	g.t.Helper()
	g.stop()
	g.restarted++
	fmt.Fprintf(g.log, "\n===== restart %d =====\n", g.restarted)
	g.start()
}

// cli runs a tollguard client command against this daemon.
func (g *guard) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args = append(args, "-c", g.Config)
	out, err := exec.CommandContext(ctx, tollguardBin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("tollguard %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// ban is the part of a ban in `tollguard bans --json` the tests check.
type ban struct {
	Scope   string `json:"scope"`
	Prefix  string `json:"prefix"`
	Account string `json:"account"`
	Rule    string `json:"rule"`
	Origin  string `json:"origin"`
	// At is when the ban was decided.
	At time.Time `json:"at"`
}

// bans returns the active bans as `tollguard bans --json` prints them.
func (g *guard) bans() []ban {
	g.t.Helper()
	out, err := g.cli("bans", "--json")
	if err != nil {
		g.t.Fatal(err)
	}
	var sum struct {
		Bans []ban `json:"bans"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		g.t.Fatalf("parsing `tollguard bans --json`: %v\n%s", err, out)
	}
	return sum.Bans
}

// bansOf returns the bans whose prefix covers addr.
func (g *guard) bansOf(addr netip.Addr) []ban {
	g.t.Helper()
	var out []ban
	for _, b := range g.bans() {
		p, err := netip.ParsePrefix(b.Prefix)
		if err == nil && p.Contains(addr) {
			out = append(out, b)
		}
	}
	return out
}

// waitBanned waits up to timeout until addr is banned and returns its bans.
func (g *guard) waitBanned(addr netip.Addr, timeout time.Duration) []ban {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b := g.bansOf(addr); len(b) > 0 || time.Now().After(deadline) {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
