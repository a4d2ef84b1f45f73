package integration

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDemoKeepInterrupt runs the built binary's `demo --keep` and sends it
// SIGINT at the moments that used to hold it up: while phones are placing
// calls (a call in flight waited out sipgo's CANCEL, up to 32 s, against
// a guard that was stopping too), during the first round of the
// continuous mix, and between rounds. Each time it must exit 0 well
// before a SIP transaction timeout; the bound is a hang detector, not a
// speed target.
func TestDemoKeepInterrupt(t *testing.T) {
	requireBinary(t)
	if testing.Short() {
		t.Skip("runs the demo")
	}
	const bound = 5 * time.Second // Timer B/F is 32 s
	cases := []struct {
		name  string
		after string        // a line of the demo's output
		wait  time.Duration // then this long
	}{
		{"while the phones register and call", "── legitimate phones register and call", 50 * time.Millisecond},
		{"while the phones call during the attacks", "── the phones keep working while attackers are stopped", 0},
		{"during the first round", "Ctrl-C stops it.", 1500 * time.Millisecond},
		{"during the second round", "round 1:", 2 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(tollguardBin, "demo", "--keep")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			var mu sync.Mutex
			cmd.Stderr = &lockedWriter{w: &out, mu: &mu}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			seen := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				sc := bufio.NewScanner(stdout)
				once := false
				for sc.Scan() {
					mu.Lock()
					out.WriteString(sc.Text() + "\n")
					mu.Unlock()
					if !once && strings.Contains(sc.Text(), tc.after) {
						once = true
						close(seen)
					}
				}
				_, _ = io.Copy(io.Discard, stdout)
			}()
			select {
			case <-seen:
			case <-time.After(90 * time.Second):
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("the demo never printed %q:\n%s", tc.after, out.String())
			}
			time.Sleep(tc.wait)
			sent := time.Now()
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { <-done; exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				t.Logf("exited %v after SIGINT", time.Since(sent).Round(time.Millisecond))
				if err != nil {
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("demo --keep exited with %v after SIGINT:\n%s", err, out.String())
				}
			case <-time.After(bound):
				_ = cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, for the log
				<-exited
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("demo --keep still running %v after SIGINT:\n%s", bound, out.String())
			}
		})
	}
}

// lockedWriter serialises writes to w with mu.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
