package integration

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/callpolicy/token"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// policyReason is the Reason header of a call policy refusal of rule.
func policyReason(rule string) string { return `Reason: SIP;cause=403;text="call_policy ` + rule + `"` }

// TestCallPolicyThroughGuard: the guard's call rules in front of Kamailio
// and a trunk UAS (sipp). 1001 bursts 6 calls with a limit of 3 a minute:
// 3 reach the trunk. 1003 dials international and premium numbers: none
// reaches Kamailio. 1002 may run one call at a time: a second call is
// refused while the first runs, and the first is cut by call_duration
// with the guard's BYE at both ends. 1004's calls pass throughout.
func TestCallPolicyThroughGuard(t *testing.T) {
	t.Parallel()
	trunk := testpeer.LoopbackAddr(t)
	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Users: users, TrunkPattern: "^(9|00)[0-9]+$",
		Trunk: netip.AddrPortFrom(trunk, 5060)})
	g := startGuard(t, guardOptions{Upstream: k.Addr, Extra: `call_policy:
  default_country: CN
  rules:
    - name: no-international
      match: {destinations: ["00", "+", premium]}
      action: reject
    - name: burst
      match: {accounts: ["1001"]}
      block: {calls_per_minute: 3}
    - name: one-at-a-time
      match: {accounts: ["1002"]}
      block: {concurrent: 1, call_duration: 2s}
`})
	phones := map[string]netip.Addr{}
	for _, u := range []string{"1001", "1002", "1003", "1004"} {
		phones[u] = testpeer.LoopbackAddr(t)
		testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phones[u], Remote: g.SIP(),
			User: u, Password: users[u]})
	}
	uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk, Calls: 100, Timeout: 40 * time.Second})

	// 1002's first call waits for the network to end it; call_duration
	// cuts it after 2 s.
	long := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCallHoldBye, Local: phones["1002"], Remote: g.SIP(),
		User: "1002", Password: users["1002"], Vars: map[string]string{"callee": "90055520", "hold": "15000", "reason": guardReason}})
	answered := time.Now()
	call := g.waitCall("1002", 5*time.Second)
	if call.Deadline.IsZero() {
		t.Errorf("1002's call has no deadline: %+v", call)
	}
	second := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phones["1002"], LocalPort: 5062, Remote: g.SIP(),
		User: "1002", Password: users["1002"], Vars: map[string]string{"callee": "90055521"}})
	normal := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phones["1004"], Remote: g.SIP(),
		User: "1004", Password: users["1004"], Calls: 3, Args: []string{"-r", "2"}, Vars: map[string]string{"callee": "90055540"}})
	burst := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phones["1001"], Remote: g.SIP(),
		User: "1001", Password: users["1001"], Calls: 6, Args: []string{"-r", "3"}, Vars: map[string]string{"callee": "90055510"}})
	var intl []testpeer.SippResult
	for _, n := range []string{"0044207123456", "00979123456789"} {
		intl = append(intl, testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phones["1003"], Remote: g.SIP(),
			User: "1003", Password: users["1003"], Vars: map[string]string{"callee": n}}))
	}
	longRes := long.Wait()
	cutAfter := time.Since(answered)
	normalRes := normal.Wait()

	if burst.Successful != 3 || burst.Failed != 3 || !strings.Contains(burst.Messages, policyReason("burst")) {
		t.Errorf("1001's burst: want 3 calls through and 3 refused with the rule's Reason: %s", burst.Summary())
	}
	if n := k.Count("trunk call", "from=1001 "); n != 3 {
		t.Errorf("kamailio routed %d calls of 1001 to the trunk, want 3", n)
	}
	for _, r := range intl {
		if r.Successful != 0 || !strings.Contains(r.Messages, policyReason("no-international")) {
			t.Errorf("1003's international call: %s", r.Summary())
		}
	}
	if n := k.Count("rx", "method=INVITE", "ruri=sip:00"); n != 0 {
		t.Errorf("kamailio received %d INVITEs to international numbers, want 0", n)
	}
	if second.Successful != 0 || !strings.Contains(second.Messages, policyReason("one-at-a-time")) {
		t.Errorf("1002's second call while the first ran: want refused: %s", second.Summary())
	}
	if longRes.ExitCode != 0 || longRes.Successful != 1 {
		t.Errorf("1002's first call was not ended by the guard's BYE: %s", longRes.Summary())
	}
	if cutAfter < 2*time.Second || cutAfter > 6*time.Second {
		t.Errorf("call_duration 2s cut the call %v after its answer", cutAfter)
	}
	if normalRes.ExitCode != 0 || normalRes.Successful != 3 {
		t.Errorf("1004's normal calls: %s", normalRes.Summary())
	}
	uasRes := uas.Stop()
	if !byeFromGuard(uasRes.Messages) {
		t.Errorf("the trunk did not get the guard's BYE at call_duration: %s", uasRes.Summary())
	}
	if n := k.Count("trunk call", "from=1004 "); n != 3 {
		t.Errorf("kamailio routed %d calls of 1004 to the trunk, want 3", n)
	}
}

// TestLockdownTokensSRTP: lockdown refuses a call within a second of
// `tollguard lockdown on` and survives a restart, while an allowlisted
// account calls throughout; a call token is accepted once and its replay
// from another address refused; an offer without SRTP is refused 488
// where SRTP is required.
func TestLockdownTokensSRTP(t *testing.T) {
	t.Parallel()
	k, trunk := pbx(t)
	g := startGuard(t, guardOptions{Upstream: k.Addr, Extra: `lockdown: {allow_accounts: ["1004"]}
call_tokens: {accounts: ["7001"], header: X-Call-Token}
media:
  srtp_required: {accounts: ["7002"]}
`})
	send := func(from string, r testpeer.Request) (int, string) {
		t.Helper()
		r.Method = "INVITE"
		if r.User == "" {
			r.User = "90055599"
		}
		code, res, err := testpeer.SendAnswer(testpeer.LoopbackAddr(t), g.SIP(), r, 3*time.Second)
		if err != nil {
			t.Fatalf("INVITE from %s: %v", from, err)
		}
		return code, res
	}

	// Lockdown.
	phone := testpeer.LoopbackAddr(t)
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: phone, Remote: g.SIP(), User: "1004", Password: users["1004"]})
	if code, _ := send("1003", testpeer.Request{From: "1003"}); code != 407 {
		t.Fatalf("1003 before lockdown: %d, want the PBX's 407", code)
	}
	if out, err := g.cli("lockdown", "on"); err != nil || !strings.Contains(out, "lockdown ON") {
		t.Fatalf("lockdown on: %v\n%s", err, out)
	}
	on := time.Now()
	code, res := send("1003", testpeer.Request{From: "1003"})
	if code != 403 || !strings.Contains(res, policyReason("lockdown")) || time.Since(on) > time.Second {
		t.Errorf("1003 after lockdown on: %d after %v\n%s", code, time.Since(on), res)
	}
	uas := testpeer.StartSipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioUAS, Local: trunk})
	allowed := testpeer.Sipp(t, testpeer.SippOptions{Scenario: testpeer.ScenarioCall, Local: phone, Remote: g.SIP(),
		User: "1004", Password: users["1004"], Vars: map[string]string{"callee": "90055504"}})
	if srv := finish(uas, allowed); allowed.Successful != 1 || srv.Successful != 1 {
		t.Errorf("1004 (allowlisted) during lockdown: %s", allowed.Summary())
	}
	g.restart()
	out, err := g.cli("lockdown", "status", "--json")
	var st api.LockdownState
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || !st.On {
		t.Fatalf("lockdown status after a restart: %v\n%s", err, out)
	}
	if code, _ := send("1003", testpeer.Request{From: "1003"}); code != 403 {
		t.Errorf("1003 during lockdown after a restart: %d, want 403", code)
	}
	if _, err := g.cli("lockdown", "off"); err != nil {
		t.Fatal(err)
	}
	if code, _ := send("1003", testpeer.Request{From: "1003"}); code != 407 {
		t.Errorf("1003 after lockdown off: %d, want the PBX's 407", code)
	}

	// Call tokens.
	out, err = g.cli("token", "new", "7001", "--json")
	var key api.TokenReply
	if err != nil || json.Unmarshal([]byte(out), &key) != nil || !strings.HasPrefix(key.URI, "otpauth://totp/") || !key.Listed {
		t.Fatalf("token new: %v\n%s", err, out)
	}
	tokenCode, err := token.Code(key.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hdr := []string{"X-Call-Token: " + tokenCode}
	if code, res := send("7001", testpeer.Request{From: "7001", Headers: hdr}); code != 407 {
		t.Errorf("7001 with a valid code: %d, want the PBX's 407\n%s", code, res)
	}
	if code, res := send("7001 replay", testpeer.Request{From: "7001", Headers: hdr}); code != 403 || !strings.Contains(res, policyReason("call_tokens")) {
		t.Errorf("7001's code replayed from another address: %d\n%s", code, res)
	}
	if code, _ := send("7001 without a code", testpeer.Request{From: "7001"}); code != 403 {
		t.Errorf("7001 without a code: %d, want 403", code)
	}
	if code, _ := send("1003 with a header", testpeer.Request{From: "1003", Headers: []string{"X-Call-Token: 000000"}}); code != 407 {
		t.Errorf("1003 (no tokens) sending a token header: %d, want the PBX's 407", code)
	}

	// SRTP required for 7002.
	plain := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	srtp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
	if code, res := send("7002 plain RTP", testpeer.Request{From: "7002", Body: plain}); code != 488 {
		t.Errorf("7002's RTP/AVP offer: %d, want 488\n%s", code, res)
	}
	if code, res := send("7002 SRTP", testpeer.Request{From: "7002", Body: srtp}); code != 407 {
		t.Errorf("7002's SRTP offer: %d, want the PBX's 407\n%s", code, res)
	}
	if code, _ := send("1003 plain RTP", testpeer.Request{From: "1003", Body: plain}); code != 407 {
		t.Errorf("1003's RTP/AVP offer (SRTP not required): %d, want the PBX's 407", code)
	}
	if n := k.Count("rx", "method=INVITE", "from=sip:7002@"); n != 1 {
		t.Errorf("kamailio received %d INVITEs from 7002, want 1 (the SRTP offer)", n)
	}
}
