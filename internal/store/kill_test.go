package store

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// childEnv carries the child's backend (JSON) when the test binary is
// re-executed as a writer to be killed.
const childEnv = "TOLLGUARD_STORE_CHILD"

type childSpec struct {
	Driver, DSN, Dir string
}

// runChild opens the store, saves a ban, prints "ready", then records
// events as fast as it can until it is killed.
func runChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	cfg := config.Default().Store
	cfg.Driver, cfg.DSN = spec.Driver, spec.DSN
	cfg.Checkpoint = config.Duration(50 * time.Millisecond)
	s, err := Open(ctx, cfg, spec.Dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ban := decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(netip.MustParseAddr("203.0.113.66")),
		Origin: "engine", Rule: "scanner", At: time.Now(), Until: time.Now().Add(time.Hour)}
	if err := s.SaveBan(ctx, ban); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("ready")
	for i := 0; ; i++ {
		s.Record(&event.AuthFailure{Meta: event.Meta{Time: time.Now(), Source: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 5060)}, Account: "1001", Code: 403})
		if i%1000 == 999 {
			// A ban in the middle of the load, as the engine would place,
			// after a Flush so the events before it are committed too.
			if err := s.Flush(ctx); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			ban.Prefix = decision.HostPrefix(netip.AddrFrom4([4]byte{192, 0, 2, byte(i / 1000)}))
			if err := s.SaveBan(ctx, ban); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			fmt.Println("ban", ban.Prefix.Addr())
		}
	}
}

func TestKill9UnderLoad(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		spec, _ := json.Marshal(childSpec{Driver: b.cfg.Driver, DSN: b.cfg.DSN, Dir: b.dir})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		if !lines.Scan() || lines.Text() != "ready" {
			cmd.Wait()
			t.Fatalf("child did not start: %q %s", lines.Text(), stderr.String())
		}
		// Let it write under load, including several bans, then kill it.
		want := []string{"203.0.113.66"}
		for len(want) < 4 && lines.Scan() {
			if a, ok := strings.CutPrefix(lines.Text(), "ban "); ok {
				want = append(want, a)
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		if len(want) < 4 {
			t.Fatalf("child stopped early: %s", stderr.String())
		}

		s := b.open(t, Options{})
		ctx := context.Background()
		rep, err := soleChain(ctx, s)
		if err != nil || !rep.OK || rep.Records < 3003 {
			t.Fatalf("after kill -9: %+v, %v", rep, err)
		}
		bans, err := s.ActiveBans(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, d := range bans {
			have[d.Prefix.Addr().String()] = true
		}
		for _, a := range want {
			if !have[a] {
				t.Errorf("ban of %s acknowledged before the kill was lost", a)
			}
		}
		// The reopened store continues the chain.
		s.Record(&event.Request{Meta: event.Meta{Time: time.Now(), Source: ap("203.0.113.1:5060")}})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = b.open(t, Options{ReadOnly: true})
		if rep2, err := soleChain(ctx, s); err != nil || !rep2.OK || rep2.LastSeq <= rep.LastSeq {
			t.Fatalf("after reopen and close: %+v, %v", rep2, err)
		}
		t.Logf("%s: %d records survived the kill", b.name, rep.Records)
	})
}
