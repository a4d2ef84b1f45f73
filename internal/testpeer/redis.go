package testpeer

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is a redis-server started by a test on a loopback address with its
// own directory and no persistence. Stop and Start kill and restart it on
// the same address, so tests can take the shared state away mid-run.
type Redis struct {
	// Addr is host:port of the server.
	Addr string
	t    testing.TB
	bin  string
	dir  string
	conf string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	log  *logBuffer
}

// StartRedis starts redis-server for the test and stops it at cleanup. It
// fails the test under CI when redis-server is missing and skips otherwise
// (see RequireTool). Extra arguments are appended to the command line
// (for example "--cluster-enabled", "yes").
func StartRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	return StartRedisOn(t, LoopbackAddr(t).String(), args...)
}

// StartRedisOn is StartRedis on a given loopback address (for servers that
// must announce their own address, as a Redis Cluster node does).
func StartRedisOn(t testing.TB, host string, args ...string) *Redis {
	t.Helper()
	r := newRedisOn(t, netip.MustParseAddr(host))
	r.args = args
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// StartSentinel starts redis-server in Sentinel mode watching master under
// the name masterName, with a quorum of one.
func StartSentinel(t testing.TB, master *Redis, masterName string) *Redis {
	t.Helper()
	r := newRedisOn(t, LoopbackAddr(t))
	host, port, _ := net.SplitHostPort(r.Addr)
	mhost, mport, _ := net.SplitHostPort(master.Addr)
	r.conf = filepath.Join(r.dir, "sentinel.conf")
	conf := fmt.Sprintf("bind %s\nport %s\ndir %s\nprotected-mode no\nsentinel monitor %s %s %s 1\n",
		host, port, r.dir, masterName, mhost, mport)
	if err := os.WriteFile(r.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("testpeer: writing sentinel config: %v", err)
	}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

func newRedisOn(t testing.TB, addr netip.Addr) *Redis {
	t.Helper()
	bin := RequireTool(t, "redis-server")
	port := FreePort(t, addr)
	return &Redis{Addr: netip.AddrPortFrom(addr, uint16(port)).String(), t: t, bin: bin, dir: t.TempDir(), log: &logBuffer{}}
}

// URL returns the redis:// URL of the server.
func (r *Redis) URL() string { return "redis://" + r.Addr }

// Start starts the server (again) and waits until it answers PING.
func (r *Redis) Start() {
	r.t.Helper()
	if r.cmd != nil {
		r.t.Fatal("testpeer: redis already running")
	}
	host, port, _ := net.SplitHostPort(r.Addr)
	var cmd *exec.Cmd
	if r.conf != "" {
		cmd = exec.Command(r.bin, r.conf, "--sentinel")
	} else {
		args := append([]string{"--bind", host, "--port", port, "--dir", r.dir,
			"--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
			"--logfile", ""}, r.args...)
		cmd = exec.Command(r.bin, args...)
	}
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("testpeer: starting redis-server: %v", err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(r.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.ping() == nil {
			return
		}
		select {
		case <-r.done:
			r.cmd = nil
			r.t.Fatalf("testpeer: redis-server exited: %s", tail(r.log.String(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.Stop()
	r.t.Fatalf("testpeer: redis-server on %s did not answer: %s", r.Addr, tail(r.log.String(), 2000))
}

// Stop kills the server (SIGKILL, as a crash would) and waits for it to
// exit. Stopping a stopped server does nothing.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// Do sends one command and returns its reply: a simple string or integer
// with its type mark (+OK, :3), a bulk string's content, or an error for an
// error reply. Arrays come back as their first line only. Tests use it to
// plant data and read state.
func (r *Redis) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return "", fmt.Errorf("redis: %s", line[1:])
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(line, "$")); err == nil && strings.HasPrefix(line, "$") {
		if n < 0 {
			return "", nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(br, b); err != nil {
			return "", err
		}
		return string(b[:n]), nil
	}
	return line, nil
}

// CommandStats returns the calls of each command the server has run
// (INFO commandstats: "xadd" → calls), for counting what a run costs.
func (r *Redis) CommandStats() (map[string]int64, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if err != nil || !strings.HasPrefix(head, "$") {
		return nil, fmt.Errorf("testpeer: INFO commandstats: unexpected reply %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, found := strings.CutPrefix(name, "cmdstat_")
		if !ok || !found {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		if v, err := strconv.ParseInt(calls, 10, 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// Commands returns the total number of commands the server has processed
// (INFO stats total_commands_processed), for counting round trips.
func (r *Redis) Commands() (int64, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")); err != nil {
		return 0, err
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
}

func (r *Redis) ping() error {
	s, err := r.Do("PING")
	if err != nil {
		return err
	}
	if s != "+PONG" {
		return fmt.Errorf("PING answered %q", s)
	}
	return nil
}
