package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/decision"
)

func TestGetBans(t *testing.T) {
	h := newHarness(t)
	w := h.do("GET", "/api/v1/bans", h.bearer(), "")
	if w.Code != 200 {
		t.Fatalf("empty summary: %d %s", w.Code, w.Body)
	}
	// Empty lists are [] so scripts can iterate without a null check.
	for _, key := range []string{`"jail": []`, `"failures": []`, `"bans": []`, `"now": "2026-03-01T12:00:00Z"`} {
		if !strings.Contains(w.Body.String(), key) {
			t.Errorf("empty summary lacks %s: %s", key, w.Body)
		}
	}

	h.bans.summary = api.BanSummary{
		Jail: []api.JailRule{{Name: "register_failure[0]", FindTime: api.Duration(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: api.Duration(3 * time.Minute)}},
		Failures: []api.Failure{
			{Time: t0.Add(-time.Second), Address: netip.MustParseAddr("203.0.113.7"), Account: "1001", Code: 403},
		},
	}
	h.bans.set.Add(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount,
		Prefix: decision.HostPrefix(netip.MustParseAddr("203.0.113.7")), Account: "1001",
		Rule: "register_failure[0]", At: t0, Until: t0.Add(3 * time.Minute)})
	w = h.do("GET", "/api/v1/bans", h.bearer(), "")
	var got api.BanSummary
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Jail) != 1 || got.Jail[0].FindTime.D() != time.Minute || got.Jail[0].BanMode != "ip_account" {
		t.Errorf("jail = %+v", got.Jail)
	}
	if !strings.Contains(w.Body.String(), `"findtime": "1m0s"`) {
		t.Errorf("durations are not strings: %s", w.Body)
	}
	if len(got.Failures) != 1 || got.Failures[0].Address.String() != "203.0.113.7" || got.Failures[0].Account != "1001" {
		t.Errorf("failures = %+v", got.Failures)
	}
	if len(got.Bans) != 1 || got.Bans[0].Target() != "1001@203.0.113.7" || !got.Bans[0].Until.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("bans = %+v", got.Bans)
	}
}

func TestPostBan(t *testing.T) {
	cases := []struct {
		name     string
		body     string
		code     int
		wantErr  string        // substring of the error, for 4xx
		wantFor  time.Duration // for 201
		wantAcct string
	}{
		{"ip only, default length", `{"ip":"198.51.100.4"}`, 201, "", api.DefaultBanFor, ""},
		{"account and days", `{"ip":"198.51.100.4","account":"1001","for":"7d","reason":"guessing"}`, 201, "", 7 * 24 * time.Hour, "1001"},
		{"mapped v6 normalised", `{"ip":"::ffff:198.51.100.4","for":"90m"}`, 201, "", 90 * time.Minute, ""},
		{"ipv6", `{"ip":"2001:db8::7","for":"1h"}`, 201, "", time.Hour, ""},
		{"bad ip", `{"ip":"198.51.100.400"}`, 400, `ip "198.51.100.400" is not an IP address`, 0, ""},
		{"cidr", `{"ip":"198.51.100.0/24"}`, 400, "not a CIDR", 0, ""},
		{"missing ip", `{"account":"1001"}`, 400, "ip is missing", 0, ""},
		{"unspecified", `{"ip":"0.0.0.0"}`, 400, "unspecified", 0, ""},
		{"zone", `{"ip":"fe80::1%eth0"}`, 400, "zone", 0, ""},
		{"control char in account", `{"ip":"198.51.100.4","account":"10\u001b[31m01"}`, 400, "account contains a control character", 0, ""},
		{"newline in reason", `{"ip":"198.51.100.4","reason":"a\nb"}`, 400, "reason contains a control character", 0, ""},
		{"bidi override in reason", `{"ip":"198.51.100.4","reason":"a\u202eb"}`, 400, "reason contains a control character", 0, ""},
		{"account too long", fmt.Sprintf(`{"ip":"198.51.100.4","account":%q}`, strings.Repeat("9", 129)), 400, "account is longer than 128 bytes", 0, ""},
		{"reason too long", fmt.Sprintf(`{"ip":"198.51.100.4","reason":%q}`, strings.Repeat("r", 257)), 400, "reason is longer than 256 bytes", 0, ""},
		{"bad duration", `{"ip":"198.51.100.4","for":"soon"}`, 400, `for: "soon" is not a duration`, 0, ""},
		{"negative duration", `{"ip":"198.51.100.4","for":"-5m"}`, 400, "out of range", 0, ""},
		{"duration too long", `{"ip":"198.51.100.4","for":"4000d"}`, 400, "out of range", 0, ""},
		{"unknown field", `{"ip":"198.51.100.4","scope":"prefix"}`, 400, `unknown field "scope"`, 0, ""},
		{"not json", `ip=198.51.100.4`, 400, "not valid JSON", 0, ""},
		{"empty body", ``, 400, "body is empty", 0, ""},
		{"two values", `{"ip":"198.51.100.4"}{}`, 400, "more than one JSON value", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			w := h.do("POST", "/api/v1/bans", h.bearer(), c.body)
			if w.Code != c.code {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.code, w.Body)
			}
			if c.code != 201 {
				if msg := errorOf(t, w); !strings.Contains(msg, c.wantErr) {
					t.Errorf("error = %q, want it to contain %q", msg, c.wantErr)
				}
				if len(h.bans.banReqs) != 0 {
					t.Errorf("invalid request reached the service: %+v", h.bans.banReqs)
				}
				return
			}
			if len(h.bans.banReqs) != 1 {
				t.Fatalf("service got %d requests", len(h.bans.banReqs))
			}
			req := h.bans.banReqs[0]
			if req.For != c.wantFor || req.Account != c.wantAcct || req.Actor != "token@127.0.0.5" || req.IP.Is4In6() {
				t.Errorf("service got %+v", req)
			}
			var rep api.BanReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Ban.Prefix.Addr() != req.IP || !rep.Ban.Until.Equal(t0.Add(c.wantFor)) {
				t.Errorf("reply = %+v", rep.Ban)
			}
			if len(h.audit) != 1 || h.audit[0].Action != "ban" || h.audit[0].Actor != "token@127.0.0.5" {
				t.Errorf("audit = %+v", h.audit)
			}
		})
	}
}

func TestServiceErrors(t *testing.T) {
	cases := []struct {
		name    string
		err     error
		code    int
		wantMsg string
	}{
		{"invalid shown", fmt.Errorf("198.51.100.4 is in the allow list: %w", api.ErrInvalid), 400, "allow list"},
		{"not found shown", fmt.Errorf("no such thing: %w", api.ErrNotFound), 404, "no such thing"},
		{"internal hidden", errors.New("database is locked at /var/lib/x"), 500, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.bans.err = c.err
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/api/v1/bans", ""},
				{"POST", "/api/v1/bans", `{"ip":"198.51.100.4"}`},
				{"DELETE", "/api/v1/bans/198.51.100.4", ""},
			} {
				w := h.do(r.method, r.path, h.bearer(), r.body)
				if w.Code != c.code {
					t.Errorf("%s %s: status %d, want %d", r.method, r.path, w.Code, c.code)
					continue
				}
				msg := errorOf(t, w)
				if !strings.Contains(msg, c.wantMsg) || strings.Contains(msg, "/var/lib") {
					t.Errorf("%s %s: error %q", r.method, r.path, msg)
				}
			}
		})
	}
}

func TestDeleteBan(t *testing.T) {
	ip := netip.MustParseAddr("203.0.113.7")
	seed := func(h *harness) {
		h.bans.set.Add(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(ip), Rule: "scanner", At: t0})
		for _, acct := range []string{"1001", "1002"} {
			h.bans.set.Add(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(ip), Account: acct, Rule: "register_failure[0]", At: t0})
		}
	}
	cases := []struct {
		name    string
		path    string
		code    int
		targets []string // lifted, sorted
		wantErr string
		left    int
	}{
		{"every account of the address", "/api/v1/bans/203.0.113.7", 200, []string{"1001@203.0.113.7", "1002@203.0.113.7", "203.0.113.7"}, "", 0},
		{"one account", "/api/v1/bans/203.0.113.7?account=1002", 200, []string{"1002@203.0.113.7"}, "", 2},
		{"mapped form of the address", "/api/v1/bans/::ffff:203.0.113.7?account=1001", 200, []string{"1001@203.0.113.7"}, "", 2},
		{"nothing on that address", "/api/v1/bans/203.0.113.8", 404, nil, "no ban in force on 203.0.113.8", 3},
		{"nothing for that account", "/api/v1/bans/203.0.113.7?account=9999", 404, nil, "no ban in force on 9999@203.0.113.7", 3},
		{"bad address", "/api/v1/bans/not-an-ip", 400, nil, `ip "not-an-ip" is not an IP address`, 3},
		{"control char in account", "/api/v1/bans/203.0.113.7?account=%1b%5b2J", 400, nil, "control character", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			seed(h)
			w := h.do("DELETE", c.path, h.bearer(), "")
			if w.Code != c.code {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.code, w.Body)
			}
			if c.code == 200 {
				var rep api.UnbanReply
				if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, d := range rep.Lifted {
					got = append(got, d.Target())
				}
				if strings.Join(slices.Sorted(slices.Values(got)), ",") != strings.Join(c.targets, ",") {
					t.Errorf("lifted %v, want %v", got, c.targets)
				}
				if !strings.HasSuffix(h.bans.unbanArg[0], "|token@127.0.0.5") {
					t.Errorf("actor not passed: %v", h.bans.unbanArg)
				}
			} else if msg := errorOf(t, w); !strings.Contains(msg, c.wantErr) {
				t.Errorf("error = %q, want %q", msg, c.wantErr)
			}
			if n := len(h.bans.set.List(t0)); n != c.left {
				t.Errorf("%d bans left, want %d", n, c.left)
			}
			// A request refused before the handler knew its target is
			// audited under its route pattern.
			wantAction := "unban"
			if c.code == 400 {
				wantAction = "DELETE /api/v1/bans/{ip}"
			}
			if len(h.audit) != 1 || h.audit[0].Action != wantAction {
				t.Errorf("audit = %+v, want one %q", h.audit, wantAction)
			}
		})
	}
}
