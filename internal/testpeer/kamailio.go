package testpeer

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// KamailioOptions configures a test Kamailio. The zero value is a registrar
// on a fresh loopback address with no users.
type KamailioOptions struct {
	// Addr is the address Kamailio listens on; zero picks LoopbackAddr.
	Addr netip.Addr
	// Port is the UDP and TCP port; zero means 5060 (the address is the
	// test's own, so the standard port is free).
	Port int
	// Users maps account names to plain-text passwords.
	Users map[string]string
	// Realm is the digest realm; default "pbx.test".
	Realm string
	// TrunkPattern is a POSIX regular expression on the Request-URI user;
	// an authenticated INVITE whose user matches goes to Trunk (the "PBX
	// behind" UAS) instead of the location table.
	TrunkPattern string
	// Trunk is where TrunkPattern calls go.
	Trunk netip.AddrPort
	// Trusted lists sources whose INVITEs are not challenged (a carrier
	// trunk calling in).
	Trusted []netip.Addr
	// Enumerable makes the PBX leak which accounts exist, as many do: an
	// INVITE, OPTIONS or MESSAGE to an unknown user gets 404 before any
	// challenge, and OPTIONS to a known one 200. Extension sweeps by
	// those methods (svwar -m INVITE/OPTIONS) then have something to find.
	Enumerable bool
	// TLS, when set, adds a TLS listener on Port+1 with the PKI's server
	// certificate (kamailio-tls-modules); client certificates are not
	// requested.
	TLS *PKI
}

// Kamailio is a running Kamailio started by StartKamailio. It is stopped
// when the test ends.
type Kamailio struct {
	// Addr is the UDP and TCP address Kamailio listens on.
	Addr netip.AddrPort
	// TLSAddr is the TLS listener, when KamailioOptions.TLS was set.
	TLSAddr netip.AddrPort
	// Realm is the digest realm it challenges with.
	Realm string

	log *logBuffer
}

// StartKamailio starts a Kamailio registrar/PBX in the foreground with its
// own configuration and runtime directory, waits until it answers OPTIONS,
// and registers a cleanup that stops it. When the test has failed, the
// cleanup copies Kamailio's log into the test log.
//
// The configuration (testdata/kamailio.cfg.tmpl) authenticates REGISTER
// (401) and INVITE (407) with digest auth against opts.Users, answers 404
// to a REGISTER for an unknown account, keeps registrations in memory with
// their Path (RFC 3327), routes calls to registered users by lookup and
// calls matching TrunkPattern to Trunk. It writes one "TGPEER ..." log line
// per request received and per authentication outcome; Count reads them.
func StartKamailio(t testing.TB, opts KamailioOptions) *Kamailio {
	t.Helper()
	bin := RequireTool(t, "kamailio")
	if !opts.Addr.IsValid() {
		opts.Addr = LoopbackAddr(t)
	}
	if opts.Port == 0 {
		opts.Port = 5060
	}
	if opts.Realm == "" {
		opts.Realm = "pbx.test"
	}
	modPath, err := kamailioModules()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	dir := t.TempDir()
	k := &Kamailio{Addr: netip.AddrPortFrom(opts.Addr, uint16(opts.Port)), Realm: opts.Realm, log: &logBuffer{}}

	tlsConfig := ""
	if opts.TLS != nil {
		k.TLSAddr = netip.AddrPortFrom(opts.Addr, uint16(opts.Port+1))
		tlsConfig = filepath.Join(dir, "tls.cfg")
		tc := fmt.Sprintf("[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"+
			"private_key = %s\ncertificate = %s\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\n",
			opts.TLS.ServerKey, opts.TLS.ServerCert)
		if err := os.WriteFile(tlsConfig, []byte(tc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := renderKamailioConfig(opts, modPath, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", cfgPath, "-DD", "-E", "-m", "64", "-M", "8",
		"-Y", dir, "-P", filepath.Join(dir, "kamailio.pid"), "-w", dir)
	cmd.Stdout = k.log
	cmd.Stderr = k.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testpeer: starting kamailio: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Kamailio's main process and its children share our new group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("kamailio %s log:\n%s", k.Addr, tail(k.log.String(), 64<<10))
		}
	})
	if err := k.waitReady(exited, 15*time.Second); err != nil {
		t.Fatalf("testpeer: kamailio on %s: %v\n%s", k.Addr, err, tail(k.log.String(), 16<<10))
	}
	return k
}

// URI returns the SIP URI of the Kamailio listener.
func (k *Kamailio) URI() string { return "sip:" + k.Addr.String() }

// Log returns everything Kamailio has logged so far.
func (k *Kamailio) Log() string { return k.log.String() }

// Count returns how many "TGPEER <what>" lines Kamailio has logged whose
// text also contains every string in and. Lines are, for example,
// "authfail" (a request with wrong credentials or an unknown user in
// them), "authok", "registered", "notfound" (REGISTER for an unknown
// account), "rx method=INVITE" (every request received), "trunk", "located".
func (k *Kamailio) Count(what string, and ...string) int {
	n := 0
	for _, line := range strings.Split(k.log.String(), "\n") {
		i := strings.Index(line, "TGPEER "+what)
		if i < 0 {
			continue
		}
		ok := true
		for _, s := range and {
			ok = ok && strings.Contains(line[i:], s)
		}
		if ok {
			n++
		}
	}
	return n
}

// Lines returns the "TGPEER <what>" lines Kamailio has logged, from
// "TGPEER" on.
func (k *Kamailio) Lines(what string) []string {
	var out []string
	for _, line := range strings.Split(k.log.String(), "\n") {
		if i := strings.Index(line, "TGPEER "+what); i >= 0 {
			out = append(out, line[i:])
		}
	}
	return out
}

// WaitCount waits up to timeout until Count(what, and...) is at least n and
// returns the last count seen.
func (k *Kamailio) WaitCount(timeout time.Duration, n int, what string, and ...string) int {
	deadline := time.Now().Add(timeout)
	for {
		c := k.Count(what, and...)
		if c >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitReady sends OPTIONS over UDP until Kamailio answers 200.
func (k *Kamailio) waitReady(exited <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited during start-up")
		case <-ctx.Done():
			return fmt.Errorf("no answer to OPTIONS within %v", timeout)
		default:
		}
		if code, err := Probe(netip.Addr{}, k.Addr, 300*time.Millisecond); err == nil && code == 200 {
			return nil
		}
	}
}

// kamailioModules finds the Debian package's module directory.
func kamailioModules() (string, error) {
	m, _ := filepath.Glob("/usr/lib/*/kamailio/modules/tm.so")
	m2, _ := filepath.Glob("/usr/lib/kamailio/modules/tm.so")
	m = append(m, m2...)
	if len(m) == 0 {
		return "", fmt.Errorf("testpeer: kamailio modules (tm.so) not found; install the kamailio package")
	}
	return filepath.Dir(m[0]), nil
}

type kamUser struct{ Name, Password string }

func renderKamailioConfig(opts KamailioOptions, modPath, tlsConfig string) ([]byte, error) {
	tmpl, err := template.ParseFS(files, "testdata/kamailio.cfg.tmpl")
	if err != nil {
		return nil, fmt.Errorf("testpeer: parsing kamailio template: %w", err)
	}
	var users []kamUser
	for name, pw := range opts.Users {
		if strings.ContainsAny(name+pw, "\"\\$\n") {
			return nil, fmt.Errorf("testpeer: user %q or its password has characters the config cannot hold", name)
		}
		users = append(users, kamUser{name, pw})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].Name < users[j].Name })
	hp := netip.AddrPortFrom(opts.Addr, uint16(opts.Port)).String()
	listen := []string{"udp:" + hp, "tcp:" + hp}
	if tlsConfig != "" {
		listen = append(listen, "tls:"+netip.AddrPortFrom(opts.Addr, uint16(opts.Port+1)).String())
	}
	data := map[string]any{
		"Listen":       listen,
		"TLS":          tlsConfig != "",
		"TLSConfig":    tlsConfig,
		"ModPath":      modPath,
		"Users":        users,
		"Realm":        opts.Realm,
		"TrunkPattern": opts.TrunkPattern,
		"Trunk":        opts.Trunk.String(),
		"Trusted":      opts.Trusted,
		"Enumerable":   opts.Enumerable,
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("testpeer: rendering kamailio config: %w", err)
	}
	return b.Bytes(), nil
}
