package testpeer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Built-in sipp scenarios (testdata/sipp). Each is a Go template over
// SippOptions.Vars; the defaults are listed with each name.
const (
	// ScenarioRegister registers -s with digest auth; vars: final (expected
	// final response, "200"), expires ("3600"), ua ("testpeer-phone").
	ScenarioRegister = "register"
	// ScenarioCall places an authenticated call to callee, holds it for
	// hold milliseconds ("500") and hangs up.
	ScenarioCall = "call"
	// ScenarioCallHoldBye places an authenticated call to callee and waits
	// up to hold milliseconds for the network to end it with a BYE, which
	// it answers 200; with reason set (a regular expression) the BYE must
	// carry a matching Reason header.
	ScenarioCallHoldBye = "call_hold_bye"
	// ScenarioCancel places an authenticated call to callee and cancels it
	// once it rings.
	ScenarioCancel = "cancel"
	// ScenarioUAS answers one call and waits for BYE; with via set (see
	// ViaPattern) the INVITE must carry a Via of that host, proving the
	// call came through it.
	ScenarioUAS = "uas"
	// ScenarioUASRing rings until the call is cancelled.
	ScenarioUASRing = "uas_ring"
)

var scenarioDefaults = map[string]string{
	"final":   "200",
	"expires": "3600",
	"ua":      "testpeer-phone",
	"callee":  "",
	"hold":    "500",
	"via":     "",
	"reason":  "",
}

// ViaPattern returns the value of the "via" scenario variable that
// requires a Via header of host addr (with or without a port).
func ViaPattern(addr netip.Addr) string {
	return regexp.QuoteMeta(addr.String())
}

// SippOptions describes one sipp run.
type SippOptions struct {
	// Scenario is a built-in scenario name or the path of an XML file.
	Scenario string
	// Vars fill the built-in scenario's template.
	Vars map[string]string
	// Local is the source address (-i); zero picks LoopbackAddr.
	Local netip.Addr
	// LocalPort is the local port (-p); zero means 5060.
	LocalPort int
	// Remote is the peer for client scenarios; unset for UAS scenarios.
	Remote netip.AddrPort
	// Transport is "udp" (default) or "tcp".
	Transport string
	// User is the account (-s) and Password its password (-au/-ap).
	User, Password string
	// Calls is the number of calls (-m); default 1.
	Calls int
	// Timeout bounds the whole run (-timeout, an error when reached);
	// default 20s.
	Timeout time.Duration
	// Args are appended to the command line.
	Args []string
}

// SippResult is the outcome of a sipp run.
type SippResult struct {
	// ExitCode is sipp's exit status: 0 all calls succeeded, 1 at least
	// one failed, 97 stopped by command, 99 no call processed, 255 fatal.
	ExitCode int
	// Successful and Failed are the cumulative call counts of the run.
	Successful, Failed int
	// Local is the source address sipp used.
	Local netip.AddrPort
	// Output is sipp's stdout and stderr; Errors its -trace_err file;
	// Messages its -trace_msg file (every message sent and received).
	Output, Errors, Messages string
}

// Summary is a short, multi-line description of the run for test logs.
func (r SippResult) Summary() string {
	return fmt.Sprintf("sipp from %s: exit %d, %d successful, %d failed\n--- errors:\n%s\n--- messages:\n%s\n--- output:\n%s",
		r.Local, r.ExitCode, r.Successful, r.Failed, tail(r.Errors, 8<<10), tail(r.Messages, 16<<10), tail(r.Output, 4<<10))
}

// SippRun is a sipp process started by StartSipp.
type SippRun struct {
	// Local is the address and port sipp listens and sends on.
	Local netip.AddrPort

	t       testing.TB
	dir     string
	cmd     *exec.Cmd
	out     *logBuffer
	done    chan struct{}
	waitErr error
}

// Sipp runs sipp to completion and returns the result; it does not judge
// it. Use SippOK when every call must succeed.
func Sipp(t testing.TB, opts SippOptions) SippResult {
	t.Helper()
	return StartSipp(t, opts).Wait()
}

// SippOK runs sipp and fails the test, with sipp's error and message
// traces, unless every call succeeded.
func SippOK(t testing.TB, opts SippOptions) SippResult {
	t.Helper()
	r := Sipp(t, opts)
	if r.ExitCode != 0 || r.Failed != 0 {
		t.Fatalf("sipp %s: %s", opts.Scenario, r.Summary())
	}
	return r
}

// StartSipp starts sipp in the background, typically a UAS that must be
// listening before the call is placed. The process is killed when the test
// ends if it is still running.
func StartSipp(t testing.TB, opts SippOptions) *SippRun {
	t.Helper()
	bin := RequireTool(t, "sipp")
	if !opts.Local.IsValid() {
		opts.Local = LoopbackAddr(t)
	}
	if opts.LocalPort == 0 {
		opts.LocalPort = 5060
	}
	if opts.Calls == 0 {
		opts.Calls = 1
	}
	if opts.Timeout == 0 {
		opts.Timeout = 20 * time.Second
	}
	dir := t.TempDir()
	scenario, err := writeScenario(dir, opts.Scenario, opts.Vars)
	if err != nil {
		t.Fatal(err)
	}
	tr := "u1"
	switch opts.Transport {
	case "", "udp":
	case "tcp":
		tr = "t1"
	default:
		t.Fatalf("testpeer: sipp transport %q: want udp or tcp", opts.Transport)
	}
	args := []string{
		"-sf", scenario,
		"-i", opts.Local.String(), "-p", strconv.Itoa(opts.LocalPort),
		"-t", tr, "-m", strconv.Itoa(opts.Calls),
		"-timeout", fmt.Sprintf("%ds", int(opts.Timeout.Seconds())), "-timeout_error",
		"-recv_timeout", "10000",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"),
		"-nostdin",
	}
	if opts.User != "" {
		args = append(args, "-s", opts.User)
	}
	if opts.Password != "" {
		args = append(args, "-au", opts.User, "-ap", opts.Password)
	}
	args = append(args, opts.Args...)
	if opts.Remote.IsValid() {
		args = append(args, opts.Remote.String())
	}
	r := &SippRun{
		Local: netip.AddrPortFrom(opts.Local, uint16(opts.LocalPort)),
		t:     t, dir: dir, out: &logBuffer{}, done: make(chan struct{}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout+15*time.Second)
	r.cmd = exec.CommandContext(ctx, bin, args...)
	r.cmd.Dir = dir
	r.cmd.Stdout = r.out
	r.cmd.Stderr = r.out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("testpeer: starting sipp: %v", err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		cancel()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
	return r
}

// Wait waits for sipp to exit and returns its result.
func (r *SippRun) Wait() SippResult {
	<-r.done
	res := SippResult{Local: r.Local, Output: r.out.String()}
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
	case errors.As(r.waitErr, &ee):
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 {
			res.ExitCode = 255
		}
	default:
		res.ExitCode = 255
		res.Output += "\n" + r.waitErr.Error()
	}
	res.Errors = readFile(filepath.Join(r.dir, "errors.log"))
	res.Messages = readFile(filepath.Join(r.dir, "messages.log"))
	res.Successful, res.Failed = parseSippStats(readFile(filepath.Join(r.dir, "stat.csv")))
	return res
}

// Stop ends a running sipp (SIGTERM) and returns its result.
func (r *SippRun) Stop() SippResult {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	return r.Wait()
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// parseSippStats reads the cumulative SuccessfulCall and FailedCall
// columns of the last line of a -trace_stat CSV file (';' separated).
func parseSippStats(csv string) (ok, failed int) {
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) < 2 {
		return 0, 0
	}
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	for i, h := range head {
		if i >= len(last) {
			break
		}
		switch h {
		case "SuccessfulCall(C)":
			ok, _ = strconv.Atoi(last[i])
		case "FailedCall(C)":
			failed, _ = strconv.Atoi(last[i])
		}
	}
	return ok, failed
}

// writeScenario renders a built-in scenario into dir, or returns a path
// given by the caller unchanged.
func writeScenario(dir, name string, vars map[string]string) (string, error) {
	if strings.HasSuffix(name, ".xml") {
		return name, nil
	}
	src, err := files.ReadFile("testdata/sipp/" + name + ".xml")
	if err != nil {
		return "", fmt.Errorf("testpeer: unknown sipp scenario %q: %w", name, err)
	}
	tmpl, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("testpeer: parsing scenario %s: %w", name, err)
	}
	data := maps.Clone(scenarioDefaults)
	maps.Copy(data, vars)
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("testpeer: rendering scenario %s: %w", name, err)
	}
	p := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("testpeer: writing scenario: %w", err)
	}
	return p, nil
}
