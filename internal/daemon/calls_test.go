package daemon

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
)

// Beside FreeSWITCH, `tollguard calls` lists the channels its events
// announced and `tollguard hangup UUID` sends uuid_kill on the daemon's
// Event Socket; a call that ended leaves the list, and a deadline ends a
// call when it passes.
func TestSidecarCallsAndHangup(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	cfg := sidecarConfig(t, srv)
	g := startDaemon(t, cfg, nil)
	sc := <-srv.Subscribed
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		args = append([]string{args[0], "--admin", g.AdminAddr().String(), "--token-file", filepath.Join(cfg.DataDir, api.TokenFile)}, args[1:]...)
		code := cli.Main(t.Context(), args, &out, &errb)
		return code, out.String() + errb.String()
	}

	const a, b, c = "6f1c3e2a-0000-4000-8000-00000000000a", "6f1c3e2a-0000-4000-8000-00000000000b", "6f1c3e2a-0000-4000-8000-00000000000c"
	now := time.Now()
	for _, id := range []string{a, b, c} {
		srv.AddChannel(id)
		sc.Write(esltest.FrameEvent(esltest.At(esltest.ChannelEventFrom("CHANNEL_CREATE", id, "198.51.100.30", "1001", "0046701234567", "inbound", "x"), now)))
		sc.Write(esltest.FrameEvent(esltest.At(esltest.ChannelEventFrom("CHANNEL_ANSWER", id, "198.51.100.30", "1001", "0046701234567", "inbound", "x"), now)))
	}
	sc.Write(esltest.FrameEvent(esltest.At(esltest.ChannelEventFrom("CHANNEL_HANGUP_COMPLETE", c, "198.51.100.30", "1001", "0046701234567", "inbound", "x"), now)))
	waitFor(t, "the calls", func() bool { return len(g.calls.Calls()) == 2 })

	code, out := run("calls")
	if code != 0 || !strings.Contains(out, a) || !strings.Contains(out, b) || strings.Contains(out, c) || strings.Contains(out, "0046701234567") {
		t.Fatalf("tollguard calls: exit %d\n%s", code, out)
	}
	if code, out := run("hangup", a); code != 0 {
		t.Fatalf("tollguard hangup: exit %d\n%s", code, out)
	}
	if !slices.Contains(srv.Commands(), "api uuid_kill "+a) {
		t.Fatalf("commands %q lack the uuid_kill", srv.Commands())
	}
	if code, _ := run("hangup", a); code == 0 {
		t.Error("a second hangup of the same call succeeded")
	}
	if code, _ := run("hangup", c); code == 0 {
		t.Error("hangup of a call that ended succeeded")
	}

	if err := g.calls.SetDeadline(b, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deadline's uuid_kill", func() bool { return slices.Contains(srv.Commands(), "api uuid_kill "+b) })
	waitFor(t, "an empty call list", func() bool { return len(g.calls.Calls()) == 0 })
}

// callControl hands call policy the Event Socket beside FreeSWITCH, and
// nothing when no placement can end calls.
func TestCallControl(t *testing.T) {
	srv := esltest.New(t, "ClueCon")
	g := startDaemon(t, sidecarConfig(t, srv), nil)
	td, ls, dl := g.callControl()
	if td != g.esl || ls != g.calls || dl != g.calls {
		t.Errorf("sidecar callControl = %T %T %T", td, ls, dl)
	}
	none := startDaemon(t, sidecarConfig(t, nil), nil)
	if td, ls, dl := none.callControl(); td != nil || ls != nil || dl != nil {
		t.Errorf("callControl without a placement = %v %v %v", td, ls, dl)
	}
}
