package integration

import (
	"fmt"
	"net/netip"
	"strings"
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

// guard is a running tollguard serve process: a testpeer.Guard with the
// listeners and rules the tests in this package share.
type guard struct {
	*testpeer.Guard
	t testing.TB
	// Config is the config file's path.
	Config string
}

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
// (and prints its config and log when the test failed).
func startGuard(t testing.TB, opts guardOptions) *guard {
	t.Helper()
	requireBinary(t)
	addr := opts.Addr
	if !addr.IsValid() {
		addr = testpeer.LoopbackAddr(t)
	}
	sip := netip.AddrPortFrom(addr, 5060)
	listen := []string{"udp://" + sip.String(), "tcp://" + sip.String()}
	tlsConf := ""
	if opts.PKI != nil {
		listen = append(listen, "tls://"+netip.AddrPortFrom(addr, 5061).String())
		ca := ""
		if opts.MutualTLS {
			ca = opts.PKI.CAFile
		}
		tlsConf = fmt.Sprintf("  tls: {cert: %q, key: %q, client_ca: %q}\n", opts.PKI.ServerCert, opts.PKI.ServerKey, ca)
	}
	listen = append(listen, opts.ExtraListen...)
	quoted := make([]string, len(listen))
	for i, l := range listen {
		quoted[i] = fmt.Sprintf("%q", l)
	}
	cfg := fmt.Sprintf("log: {level: debug, fail2ban_file: %q}\nsip:\n  listen: [%s]\n  upstream: %q\n%s%s",
		opts.Fail2banFile, strings.Join(quoted, ", "), "udp://"+opts.Upstream.String(), tlsConf, opts.SIPExtra)
	if !opts.DefaultRules && !strings.Contains(opts.Extra, "jail:") {
		cfg += defaultJail
	}
	if !opts.Greylist && !strings.Contains(opts.Extra, "greylist:") {
		cfg += greylistOff
	}
	cfg += opts.Extra
	g := testpeer.StartGuard(t, testpeer.GuardOptions{Bin: tollguardBin, Name: addr.String(), Addr: addr, Config: cfg})
	return &guard{Guard: g, t: t, Config: g.ConfigFile}
}

// restart stops the daemon and starts it again on the same config and
// data directory.
func (g *guard) restart() {
	g.t.Helper()
	g.Stop()
	g.Start()
}

// cli runs a tollguard client command against this daemon.
func (g *guard) cli(args ...string) (string, error) { return g.CLI(args...) }

// ban is the part of a ban in `tollguard bans --json` the tests check.
type ban = testpeer.GuardBan

// bans returns the active bans as `tollguard bans --json` prints them.
func (g *guard) bans() []ban {
	g.t.Helper()
	b, err := g.Bans()
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

// bansOf returns the bans whose prefix covers addr.
func (g *guard) bansOf(addr netip.Addr) []ban {
	g.t.Helper()
	b, err := g.BansOf(addr)
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

// waitBanned waits up to timeout until addr is banned and returns its bans.
func (g *guard) waitBanned(addr netip.Addr, timeout time.Duration) []ban {
	g.t.Helper()
	return g.WaitBanned(addr, timeout)
}
