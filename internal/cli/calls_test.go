package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/teardown"
)

// fakeCalls is an in-memory api.CallService.
type fakeCalls struct {
	mu    sync.Mutex
	calls []teardown.Call
}

func (f *fakeCalls) Calls() []teardown.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]teardown.Call(nil), f.calls...)
}

func (f *fakeCalls) HangupCall(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.calls {
		if c.ID == id {
			f.calls = append(f.calls[:i], f.calls[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("fake: %w", teardown.ErrNoCall)
}

func (f *fakeCalls) SetDeadline(string, time.Time) error { return nil }

func TestCallsAndHangupEndToEnd(t *testing.T) {
	f := &fakeCalls{calls: []teardown.Call{{
		ID: "c1@10.0.0.1", Account: "13812345678", From: "13812345678", To: "0044201234567",
		Source: netip.MustParseAddrPort("198.51.100.7:5060"), Direction: "outbound",
		Start: t0.Add(-95 * time.Second), Answer: t0.Add(-90 * time.Second),
	}, {
		ID: "evil\x1b[2J", Account: "1001", To: "1002", Direction: "outbound",
		Source: netip.MustParseAddrPort("198.51.100.8:5060"), Start: t0.Add(-5 * time.Second), Answer: t0.Add(-4 * time.Second),
	}}}
	d := startDaemon(t, func(s *api.Server) { s.MountCalls(f) })

	code, out, errOut := d.cli(t, "calls", "-c", d.cfg)
	want := `Running calls: 2
CALL-ID        DIRECTION  ACCOUNT      FROM         TO             SOURCE             START                ANSWER               DURATION  CUT AT
c1@10.0.0.1    outbound   138****5678  138****5678  004******4567  198.51.100.7:5060  2026-03-01 11:58:25  2026-03-01 11:58:30  1m30s     -
"evil\x1b[2J"  outbound   1001         -            1002           198.51.100.8:5060  2026-03-01 11:59:55  2026-03-01 11:59:56  4s        -
`
	if code != 0 || out != want {
		t.Errorf("calls: exit %d, stderr %q:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	code, out, _ = d.cli(t, "calls", "--json", "--unmask", "-c", d.cfg)
	var rep api.CallsReply
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || rep.Masked || rep.Calls[0].To != "0044201234567" {
		t.Errorf("calls --json --unmask: exit %d, %v: %s", code, err, out)
	}

	code, out, errOut = d.cli(t, "hangup", "c1@10.0.0.1", "-c", d.cfg)
	if code != 0 || out != "hung up c1@10.0.0.1: both sides confirmed the BYE\n" {
		t.Errorf("hangup: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = d.cli(t, "hangup", "c1@10.0.0.1", "-c", d.cfg)
	if code != 1 || !strings.Contains(errOut, `no running call "c1@10.0.0.1"`) {
		t.Errorf("second hangup: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ = d.cli(t, "hangup", "-c", d.cfg); code != 2 {
		t.Errorf("hangup without a call id: exit %d, want 2", code)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var actions []string
	for _, a := range d.audit {
		actions = append(actions, a.Action+" "+a.Target)
	}
	if got := strings.Join(actions, ","); got != "unmask calls,hangup c1@10.0.0.1,hangup c1@10.0.0.1" {
		t.Errorf("audit = %s", got)
	}
}
