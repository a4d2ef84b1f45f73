package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// guardReason matches the Reason header of the guard's own BYEs.
const guardReason = `cause=16;text="call ended by tollguard"`

// calls returns the running calls as `tollguard calls --json --unmask`
// prints them.
func (g *guard) calls() []api.CallRecord {
	g.t.Helper()
	out, err := g.cli("calls", "--json", "--unmask")
	if err != nil {
		g.t.Fatal(err)
	}
	var rep api.CallsReply
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		g.t.Fatalf("calls --json: %v: %s", err, out)
	}
	return rep.Calls
}

// waitCall waits until a running call placed by account is listed and
// returns it.
func (g *guard) waitCall(account string, timeout time.Duration) api.CallRecord {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, c := range g.calls() {
			if c.Account == account {
				return c
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("no running call of %s listed by `tollguard calls`", account)
	return api.CallRecord{}
}

// post sends an authenticated POST to the admin API and returns the status.
func (g *guard) post(path string, body any) int {
	g.t.Helper()
	tok, err := os.ReadFile(filepath.Join(g.DataDir, "admin.token"))
	if err != nil {
		g.t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+g.Admin.String()+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// byeFromGuard reports whether a sipp message trace holds a BYE carrying
// the guard's Reason header.
func byeFromGuard(messages string) bool {
	for _, m := range strings.Split(messages, "\n\n") {
		if strings.Contains(m, "BYE sip:") && strings.Contains(m, guardReason) {
			return true
		}
	}
	return false
}

// TestHangupThroughGuard: a phone's call to a trunk behind Kamailio is
// ended by `tollguard hangup` (the phone and the trunk both get the
// guard's BYE and answer it), and a second call is cut by a deadline set
// through the admin API; another phone's call, running throughout, ends
// normally with its own BYE.
func TestHangupThroughGuard(t *testing.T) {
	t.Parallel()
	k, trunk := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr})
	victim, other := testpeer.LoopbackAddr(t), testpeer.LoopbackAddr(t)
	for _, p := range []struct {
		addr netip.Addr
		user string
	}{{victim, "1001"}, {other, "1002"}} {
		testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: p.addr, Remote: g.SIP(),
			User: p.user, Password: users[p.user]})
	}

	// Phase 1: two calls to the trunk; 1002's holds 8 s and hangs up
	// itself, 1001's waits for the network to end it.
	uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk, Calls: 2})
	normal := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: other, Remote: g.SIP(),
		User: "1002", Password: users["1002"], Vars: map[string]string{"callee": "90055502", "hold": "8000"}})
	g.waitCall("1002", 5*time.Second)
	cut := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCallHoldBye, Local: victim, Remote: g.SIP(),
		User: "1001", Password: users["1001"], Vars: map[string]string{"callee": "90055501", "hold": "15000", "reason": guardReason}})
	call := g.waitCall("1001", 5*time.Second)
	if call.To != "90055501" || call.Direction != "outbound" || call.Source.Addr() != victim {
		t.Errorf("listed call = %+v", call)
	}
	out, err := g.cli("hangup", call.ID)
	if err != nil || !strings.Contains(out, "both sides confirmed the BYE") {
		t.Fatalf("tollguard hangup: %v\n%s", err, out)
	}
	cutRes := cut.Wait()
	if cutRes.ExitCode != 0 || cutRes.Successful != 1 {
		t.Fatalf("phone 1001 did not see the guard's BYE: %s", cutRes.Summary())
	}
	left := g.calls()
	if anyCall(left, "1001") {
		t.Errorf("1001's call still listed after hangup: %+v", left)
	}
	if !anyCall(left, "1002") {
		t.Error("1002's call was not listed after 1001's hangup: it must run untouched")
	}
	normalRes := normal.Wait()
	uasRes := uas.Wait()
	if normalRes.ExitCode != 0 || normalRes.Successful != 1 {
		t.Errorf("phone 1002's own call: %s", normalRes.Summary())
	}
	if uasRes.ExitCode != 0 || uasRes.Successful != 2 || !byeFromGuard(uasRes.Messages) {
		t.Errorf("trunk: want 2 calls ended with a BYE, one of them the guard's: %s", uasRes.Summary())
	}
	if n := strings.Count(normalRes.Messages, guardReason); n != 0 {
		t.Errorf("phone 1002 saw the guard's Reason %d times", n)
	}

	// Phase 2: a deadline set through the admin API cuts the call when it
	// passes, with nobody calling hangup.
	uas = testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk})
	cut = testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCallHoldBye, Local: victim, Remote: g.SIP(),
		User: "1001", Password: users["1001"], Vars: map[string]string{"callee": "90055503", "hold": "15000", "reason": guardReason}})
	call = g.waitCall("1001", 5*time.Second)
	set := time.Now()
	if code := g.post("/api/v1/calls/"+call.ID+"/deadline", api.DeadlineBody{After: "1s"}); code != http.StatusOK {
		t.Fatalf("POST deadline: %d", code)
	}
	cutRes = cut.Wait()
	took := time.Since(set)
	if cutRes.ExitCode != 0 || cutRes.Successful != 1 {
		t.Fatalf("phone 1001 not cut by the deadline: %s", cutRes.Summary())
	}
	if took < time.Second {
		t.Errorf("call cut %v after a 1s deadline was set", took)
	}
	if uasRes := uas.Wait(); uasRes.ExitCode != 0 || !byeFromGuard(uasRes.Messages) {
		t.Errorf("trunk did not get the guard's BYE at the deadline: %s", uasRes.Summary())
	}
	// UDP retransmissions may add to the count, never take from it.
	if n := k.Count("rx", "method=BYE", "src="+g.Addr.String()+":"); n < 3 {
		t.Errorf("kamailio received %d BYEs from the guard, want at least 3 (1002's own and two of the guard's)", n)
	}
}

func anyCall(cs []api.CallRecord, account string) bool {
	for _, c := range cs {
		if c.Account == account {
			return true
		}
	}
	return false
}
