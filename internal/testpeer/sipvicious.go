package testpeer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SipviciousOptions describes one run of a SIPVicious tool.
type SipviciousOptions struct {
	// Tool is "svcrack", "svwar" or "svmap".
	Tool string
	// Local is the attacker's source address; zero picks LoopbackAddr.
	Local netip.Addr
	// Target is the SIP server attacked (UDP; SIPVicious OSS has no TCP).
	Target netip.AddrPort
	// Args are the tool's own options, e.g. {"-u", "1001", "-d", dict} for
	// svcrack or {"-e", "1000-1020", "-m", "REGISTER"} for svwar.
	Args []string
	// Timeout bounds the run; default 60s. The tool is killed after it.
	Timeout time.Duration
	// UserAgent, when set, replaces SIPVicious's "friendly-scanner"
	// User-Agent, disguising the tool from fingerprint matching.
	UserAgent string
}

// SipviciousResult is the outcome of a SIPVicious run.
type SipviciousResult struct {
	// Output is the tool's combined stdout and stderr.
	Output string
	// ExitCode is the exit status, -1 when killed at the timeout.
	ExitCode int
	// Local is the source address the tool sent from.
	Local netip.Addr
	// Elapsed is how long the tool ran.
	Elapsed time.Duration
}

// Sipvicious runs a SIPVicious 0.3.x tool with all its sockets bound to
// opts.Local. SIPVicious ignores its own -b option, so the run goes through
// testdata/svwrap.py, which rebinds wildcard binds to the chosen address;
// "-x Local" is added so the tool also writes that address into Via and
// Contact. The tool needs python3 and the Debian sipvicious package.
func Sipvicious(t testing.TB, opts SipviciousOptions) SipviciousResult {
	t.Helper()
	RequireTool(t, opts.Tool)
	py := RequireTool(t, "python3")
	if p, err := exec.LookPath("/usr/bin/python3"); err == nil {
		py = p // the interpreter the Debian package was built for
	}
	switch opts.Tool {
	case "svcrack", "svwar", "svmap":
	default:
		t.Fatalf("testpeer: unknown SIPVicious tool %q", opts.Tool)
	}
	if !opts.Local.IsValid() {
		opts.Local = LoopbackAddr(t)
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "svwrap.py")
	src, err := files.ReadFile("testdata/svwrap.py")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrapper, src, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{wrapper, opts.Local.String(), opts.Tool, "-x", opts.Local.String()}
	args = append(args, opts.Args...)
	args = append(args, "-p", strconv.Itoa(int(opts.Target.Port())), opts.Target.Addr().String())

	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = dir
	// SIPVicious keeps session state under $HOME/.sipvicious.
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if opts.UserAgent != "" {
		cmd.Env = append(cmd.Env, "SVWRAP_USERAGENT="+opts.UserAgent)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res := SipviciousResult{Output: string(out), Local: opts.Local, Elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		res.ExitCode = -1
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	default:
		t.Fatalf("testpeer: running %s: %v", opts.Tool, err)
	}
	if strings.Contains(res.Output, "Traceback (most recent call last)") {
		t.Fatalf("testpeer: %s crashed:\n%s", opts.Tool, tail(res.Output, 8<<10))
	}
	return res
}

// WriteDictionary writes one password per line to a temporary file and
// returns its path, for svcrack -d.
func WriteDictionary(t testing.TB, words ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dictionary.txt")
	if err := os.WriteFile(p, []byte(strings.Join(words, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(fmt.Errorf("testpeer: writing dictionary: %w", err))
	}
	return p
}
