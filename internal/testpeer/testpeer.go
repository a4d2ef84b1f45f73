// Package testpeer starts real SIP peers from Go tests: a Kamailio
// registrar/PBX with digest auth, sipp phones and trunks, and the SIPVicious
// attack tools, each on its own 127.0.x.y loopback address; and headless
// Chromium for the console's browser tests. It is imported by tests only.
//
// A helper whose external program is missing fails the test when the CI
// environment variable is set and skips it otherwise, so a developer
// without the tools can still run `go test ./...` while CI cannot silently
// lose coverage. scripts/install-test-deps.sh installs every program used
// here.
package testpeer

import (
	"embed"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
)

//go:embed testdata/kamailio.cfg.tmpl testdata/kamailio-edge.cfg.tmpl testdata/sipp/*.xml testdata/svwrap.py
var files embed.FS

// RequireTool returns the path of the named program. When it is not
// installed, RequireTool fails the test if the environment variable CI is
// set and skips it otherwise.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := fmt.Sprintf("%s is not installed (run scripts/install-test-deps.sh): %v", name, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// requireRoot fails the test when CI is set and skips it otherwise: the
// caller could not do what only root may (raw sockets, namespaces).
func requireRoot(t testing.TB, why string) {
	t.Helper()
	msg := "needs root (CAP_NET_RAW): " + why
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var (
	addrOnce sync.Once
	addrBase int
	addrNext atomic.Int64
)

// LoopbackAddr returns a loopback address that no other call in this
// process has returned. Addresses are 127.0.B.H with B derived from the
// process id, so test binaries of different packages running at the same
// time rarely share an address; H runs from 2 to 251 and then B moves on.
// 127.0.0.1 is never returned. Linux routes all of 127.0.0.0/8 to lo, so
// no set-up is needed.
func LoopbackAddr(t testing.TB) netip.Addr {
	t.Helper()
	addrOnce.Do(func() { addrBase = 1 + os.Getpid()%200 })
	n := int(addrNext.Add(1)) - 1
	b := addrBase + n/250
	if b > 254 {
		t.Fatalf("testpeer: out of loopback addresses after %d", n)
	}
	return netip.AddrFrom4([4]byte{127, 0, byte(b), byte(2 + n%250)})
}

// FreePort returns a port that is free for both UDP and TCP on addr at the
// time of the call.
func FreePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		if err != nil {
			t.Fatalf("testpeer: listen on %s: %v", addr, err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, uint16(port)).String())
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatalf("testpeer: no port free for both UDP and TCP on %s", addr)
	return 0
}

// logBuffer is an io.Writer that keeps everything written to it; it is
// safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	b.mu.Unlock()
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// tail returns at most the last n bytes of s, cut at a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return "…" + s[i:]
		}
	}
	return s
}
