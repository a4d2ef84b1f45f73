package api_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

// fakePolicy is an in-memory PolicyService.
type fakePolicy struct {
	on      bool
	hangup  bool
	checked []string
}

func (f *fakePolicy) Lockdown(context.Context) (api.LockdownState, error) {
	return api.LockdownState{On: f.on, AllowAccounts: []string{"2001"}}, nil
}

func (f *fakePolicy) SetLockdown(_ context.Context, on, hangup bool, _ string) (api.LockdownState, error) {
	f.on, f.hangup = on, hangup
	return api.LockdownState{On: on, AllowAccounts: []string{"2001"}, Hangups: map[bool]int{true: 2}[hangup]}, nil
}

func (f *fakePolicy) CheckCall(_ context.Context, account string, ip netip.Addr, dest string) api.CheckReply {
	f.checked = append(f.checked, account+"@"+ip.String()+">"+dest)
	if strings.HasPrefix(dest, "00") {
		return api.CheckReply{Result: "deny", Code: 403, Rule: "call_policy", Policy: "no-international", Reason: "action reject"}
	}
	return api.CheckReply{Result: "allow"}
}

func (f *fakePolicy) NewToken(_ context.Context, account string) (api.TokenReply, error) {
	return api.TokenReply{Account: account, Secret: "JBSWY3DPEHPK3PXP", URI: "otpauth://totp/tollguard:" + account, Listed: true}, nil
}

func TestPolicyRoutes(t *testing.T) {
	h := newHarness(t)
	f := &fakePolicy{}
	h.srv.MountPolicy(f)
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"status", "GET", "/api/v1/lockdown", "", 200, `"on": false`},
		{"on with hangup", "PUT", "/api/v1/lockdown", `{"on":true,"hangup":true}`, 200, `"hangups": 2`},
		{"bad body", "PUT", "/api/v1/lockdown", `{"on":"yes"}`, 400, ""},
		{"allow", "GET", "/api/v1/check/call?account=1001&ip=198.51.100.7&destination=13800138000", "", 200, `"result": "allow"`},
		{"deny", "GET", "/api/v1/check/call?account=1001&ip=::ffff:198.51.100.7&destination=0044201234567", "", 200, `"policy": "no-international"`},
		{"no ip", "GET", "/api/v1/check/call?account=1001&destination=1", "", 400, "ip"},
		{"no account", "GET", "/api/v1/check/call?ip=198.51.100.7&destination=1", "", 400, "account"},
		{"control character", "GET", "/api/v1/check/call?account=1001&ip=198.51.100.7&destination=1%1b", "", 400, "destination"},
		{"token", "POST", "/api/v1/tokens/1001", "", 200, `"uri": "otpauth://totp/tollguard:1001"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := h.do(tc.method, tc.path, h.bearer(), tc.body)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Errorf("status %d body %s, want %d with %q", w.Code, w.Body, tc.code, tc.want)
			}
		})
	}
	if !f.on || !f.hangup {
		t.Errorf("lockdown on --hangup not passed on: %+v", f)
	}
	if len(f.checked) != 2 || f.checked[1] != "1001@198.51.100.7>0044201234567" {
		t.Errorf("checks = %q (the mapped address must be unmapped)", f.checked)
	}
	if w := h.do("GET", "/api/v1/check/call?account=1&ip=1.2.3.4&destination=1", "", ""); w.Code != 401 {
		t.Errorf("check without a token: %d", w.Code)
	}
	var st api.LockdownState
	if err := json.Unmarshal(h.do("GET", "/api/v1/lockdown", h.bearer(), "").Body.Bytes(), &st); err != nil || !st.On {
		t.Errorf("status after on: %+v %v", st, err)
	}
}

// A call policy verdict in the store shows its rule, mode, counters and
// loss estimate in `tollguard events`.
func TestPolicyVerdictInEvents(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	st, err := store.Open(ctx, config.Default().Store, t.TempDir(), store.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.Record(&event.Verdict{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort("198.51.100.7:5060")},
		SIP: event.SIP{Method: "INVITE", FromUser: "1001", RURIUser: "0044201234567"}, Action: "pass", Rule: "call_policy",
		Reason: "burst: shadow, would reject: calls_per_minute 61 > 60", Policy: "burst", Mode: "shadow",
		Counters: "calls_per_minute=61 concurrent=2", Loss: "1.20 USD"})
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	h.srv.MountEvents(st)
	w := h.do("GET", "/api/v1/events?kind=verdict", h.bearer(), "")
	want := `pass burst: shadow, would reject: calls_per_minute 61 \u003e 60 (shadow) [calls_per_minute=61 concurrent=2] loss≈1.20 USD`
	if w.Code != 200 || !strings.Contains(w.Body.String(), want) {
		t.Errorf("events: %d %s\nwant a summary %s", w.Code, w.Body, want)
	}
}
