package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/teardown"
	"github.com/tollguard/tollguard/internal/users"
)

func TestLoginCookieAndTOTP(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("alice", users.Operator)
	c := h.client()
	wrong := h.code(u, false)
	wrong = string(rune('0'+(wrong[0]-'0'+1)%10)) + wrong[1:]
	body := func(code string) string {
		b, _ := json.Marshal(LoginBody{Name: "alice", Password: testPassword, Code: code})
		return string(b)
	}
	if code, resp, _ := c.do("POST", "/ui/login", body(wrong), nil); code != http.StatusUnauthorized || !strings.Contains(resp, "wrong user name, password or code") {
		t.Errorf("wrong TOTP: %d %s", code, resp)
	}
	good := h.code(u, false)
	code, resp, hdr := c.do("POST", "/ui/login", body(good), nil)
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, resp)
	}
	ck := hdr.Get("Set-Cookie")
	for _, want := range []string{CookieName + "=", "Path=/ui/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("cookie %q is Secure over plain loopback HTTP (browsers would drop it on 127.0.0.1)", ck)
	}
	// The same code again, from a fresh browser: refused.
	if code, resp, _ := h.client().do("POST", "/ui/login", body(good), nil); code != http.StatusUnauthorized {
		t.Errorf("replayed TOTP: %d %s", code, resp)
	}
	// Unknown user: the same answer as a wrong password.
	b, _ := json.Marshal(LoginBody{Name: "mallory", Password: testPassword, Code: good})
	if code, resp2, _ := h.client().do("POST", "/ui/login", string(b), nil); code != http.StatusUnauthorized || resp2 != strings.Replace(resp2, "mallory", "", 1) {
		t.Errorf("unknown user: %d %s", code, resp2)
	}
	// Secure cookies when a TLS proxy fronts the console.
	h2 := newHarness(t, func() config.UI { u := config.Default().UI; u.SecureCookies = true; return u }())
	u2 := h2.addUser("bob", users.Viewer)
	b, _ = json.Marshal(LoginBody{Name: "bob", Password: testPassword, Code: h2.code(u2, false)})
	if code, _, hdr := h2.client().do("POST", "/ui/login", string(b), nil); code != http.StatusOK || !strings.Contains(hdr.Get("Set-Cookie"), "Secure") {
		t.Errorf("secure_cookies: %d %q", code, hdr.Get("Set-Cookie"))
	}
}

func TestLoginRefusals(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("alice", users.Admin)
	b, _ := json.Marshal(LoginBody{Name: "alice", Password: testPassword, Code: h.code(u, false)})
	for _, tc := range []struct {
		name   string
		origin string
		want   int
	}{
		{"no origin", "", http.StatusForbidden},
		{"other origin", "https://evil.example", http.StatusForbidden},
		{"null origin", "null", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Origin": tc.origin}
			if code, resp, _ := h.client().do("POST", "/ui/login", string(b), hdr); code != tc.want {
				t.Errorf("%d %s, want %d", code, resp, tc.want)
			}
		})
	}
	// Plain HTTP from another host: refused before any credential check.
	req := httptest.NewRequest("POST", "http://192.0.2.1:9061/ui/login", bytes.NewReader(b))
	req.RemoteAddr = "203.0.113.5:40000"
	req.Header.Set("Origin", "http://192.0.2.1:9061")
	rec := httptest.NewRecorder()
	h.con.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "HTTPS") {
		t.Errorf("plain HTTP from a remote host: %d %s", rec.Code, rec.Body)
	}
}

func TestLockoutThroughConsole(t *testing.T) {
	ui := config.Default().UI
	ui.LoginAttempts, ui.SourceAttempts = 2, 10
	h := newHarness(t, ui)
	u := h.addUser("admin", users.Admin)
	c := h.client()
	for range 2 {
		b, _ := json.Marshal(LoginBody{Name: "admin", Password: "guessing-guessing", Code: "123456"})
		c.do("POST", "/ui/login", string(b), nil)
	}
	b, _ := json.Marshal(LoginBody{Name: "admin", Password: testPassword, Code: h.code(u, false)})
	if code, resp, _ := c.do("POST", "/ui/login", string(b), nil); code != http.StatusTooManyRequests {
		t.Errorf("after 2 failures: %d %s, want 429", code, resp)
	}
}

func TestCSRFAndRoles(t *testing.T) {
	h := newHarness(t, config.UI{})
	op := h.addUser("olga", users.Operator)
	vw := h.addUser("victor", users.Viewer)
	oc, vc := h.client(), h.client()
	oc.login(op, false)
	vc.login(vw, false)
	ban := `{"ip":"203.0.113.7","reason":"<img src=x onerror=alert(1)>"}`

	// No CSRF token, a wrong one, a foreign Origin: refused, nothing banned.
	for _, hdr := range []map[string]string{
		{CSRFHeader: ""}, {CSRFHeader: strings.Repeat("0", 64)}, {"Origin": "https://evil.example"}, {"Origin": ""},
	} {
		if code, resp, _ := oc.do("POST", "/ui/api/v1/bans", ban, hdr); code != http.StatusForbidden {
			t.Errorf("POST with %v: %d %s, want 403", hdr, code, resp)
		}
	}
	if n := len(h.bans.set.List(time.Now())); n != 0 {
		t.Fatalf("%d bans placed by refused requests", n)
	}
	// Without a session at all.
	if code, _, _ := h.client().do("POST", "/ui/api/v1/bans", ban, nil); code != http.StatusUnauthorized {
		t.Errorf("POST without a session: %d", code)
	}
	// The operator bans; the audit names the user.
	if code, resp, _ := oc.do("POST", "/ui/api/v1/bans", ban, nil); code != http.StatusCreated {
		t.Fatalf("operator ban: %d %s", code, resp)
	}
	// The viewer may read but not unban, unmask or back up.
	if code, _, _ := vc.do("GET", "/ui/api/v1/bans", "", nil); code != http.StatusOK {
		t.Errorf("viewer GET bans: %d", code)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"DELETE", "/ui/api/v1/bans/203.0.113.7", ""},
		{"POST", "/ui/api/v1/bans", ban},
		{"GET", "/ui/api/v1/events?unmask=true", ""},
		{"GET", "/ui/api/v1/investigate?unmask=1", ""},
	} {
		if code, resp, _ := vc.do(tc.method, tc.path, tc.body, nil); code != http.StatusForbidden {
			t.Errorf("viewer %s %s: %d %s, want 403", tc.method, tc.path, code, resp)
		}
	}
	if len(h.bans.set.List(time.Now())) != 1 {
		t.Fatal("the viewer's unban went through")
	}
	if code, resp, _ := oc.do("POST", "/ui/api/v1/backup", `{"path":"/tmp/x.db"}`, nil); code != http.StatusForbidden {
		t.Errorf("operator backup: %d %s, want 403", code, resp)
	}
	if code, resp, _ := oc.do("DELETE", "/ui/api/v1/bans/203.0.113.7", "", nil); code != http.StatusOK {
		t.Errorf("operator unban: %d %s", code, resp)
	}
	// The audit trail names who did what.
	if err := h.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := h.st.Query(context.Background(), store.Filter{Kinds: []event.Kind{event.KindAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		a := r.Event.(*event.Admin)
		got = append(got, a.Actor+" "+a.Action)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"olga@127.0.0.1 ban", "olga@127.0.0.1 unban", "olga@127.0.0.1 login", "victor@127.0.0.1 login"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
	// The bearer token still works for scripts, without the console.
	tok, err := os.ReadFile(filepath.Join(h.dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", h.srv.URL+"/api/v1/bans", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("bearer token beside the console: %v %v", res.Status, err)
	}
	res.Body.Close()
}

func TestSessionFixationAndLogout(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("alice", users.Admin)
	c := h.client()
	planted := &http.Cookie{Name: CookieName, Value: strings.Repeat("a", 64), Path: "/ui/"}
	req, _ := http.NewRequest("GET", h.srv.URL+"/ui/", nil)
	c.hc.Jar.SetCookies(req.URL, []*http.Cookie{planted})
	c.login(u, false)
	var now string
	for _, ck := range c.hc.Jar.Cookies(req.URL) {
		if ck.Name == CookieName {
			now = ck.Value
		}
	}
	if now == "" || now == planted.Value {
		t.Fatalf("session token after login = %q: the planted one was kept", now)
	}
	if code, _, _ := c.do("GET", "/ui/session", "", nil); code != http.StatusOK {
		t.Fatalf("session after login: %d", code)
	}
	if code, _, _ := c.do("POST", "/ui/logout", "", nil); code != http.StatusOK {
		t.Fatalf("logout: %d", code)
	}
	// The old token no longer works even if replayed.
	c2 := h.client()
	c2.hc.Jar.SetCookies(req.URL, []*http.Cookie{{Name: CookieName, Value: now, Path: "/ui/"}})
	if code, _, _ := c2.do("GET", "/ui/api/v1/bans", "", nil); code != http.StatusUnauthorized {
		t.Errorf("token after logout: %d, want 401", code)
	}
	// A deleted user's session ends.
	c3 := h.client()
	u2 := h.addUser("bob", users.Viewer)
	c3.login(u2, false)
	if err := users.Open(h.dir).Delete("bob"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := c3.do("GET", "/ui/api/v1/bans", "", nil); code != http.StatusUnauthorized {
		t.Errorf("session of a deleted user: %d, want 401", code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t, config.UI{})
	for _, p := range []string{"/ui/", "/ui/static/app.js", "/ui/session", "/ui/nope"} {
		_, _, hdr := h.client().do("GET", p, "", nil)
		csp := hdr.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: X-Frame-Options %q, nosniff %q", p, hdr.Get("X-Frame-Options"), hdr.Get("X-Content-Type-Options"))
		}
	}
	code, body, _ := h.client().do("GET", "/ui/", "", nil)
	if code != http.StatusOK || strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "onclick") {
		t.Errorf("index: %d, inline script or style present", code)
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") || strings.Contains(body, "//cdn") {
		t.Error("index.html refers to another origin")
	}
	// The rest of the admin API still wants its token.
	if code, _, _ := h.client().do("GET", "/api/v1/bans", "", nil); code != http.StatusUnauthorized {
		t.Errorf("API without token through the console's server: %d", code)
	}
}

func TestLiveStreamShowsNewBan(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("olga", users.Operator)
	c := h.client()
	c.login(u, false)
	req, _ := http.NewRequest("GET", h.srv.URL+"/ui/live", nil)
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan LiveBans, 8)
	go func() {
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var lb LiveBans
				if json.Unmarshal([]byte(data), &lb) == nil {
					events <- lb
				}
			}
		}
		close(events)
	}()
	select {
	case first := <-events:
		if len(first.Bans) != 0 {
			t.Fatalf("first message: %+v", first)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first message on the live stream")
	}
	if code, resp, _ := c.do("POST", "/ui/api/v1/bans", `{"ip":"198.51.100.23"}`, nil); code != http.StatusCreated {
		t.Fatalf("ban: %d %s", code, resp)
	}
	select {
	case lb := <-events:
		if len(lb.Bans) != 1 || lb.Bans[0].Prefix.Addr().String() != "198.51.100.23" {
			t.Errorf("live message after the ban: %+v", lb)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the ban did not reach the live stream within 2 s")
	}
}

func TestOverviewCounts(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("victor", users.Viewer)
	c := h.client()
	c.login(u, false)
	now := time.Now()
	for range 3 {
		h.st.Record(&event.Verdict{Meta: event.Meta{Time: now}, Rule: "fingerprint", Action: "drop"})
	}
	h.st.Record(&event.Register{Meta: event.Meta{Time: now}, Account: "1001"})
	if err := h.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, body, _ := c.do("GET", "/ui/overview?days=1", "", nil)
	var rep OverviewReply
	if code != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil || !rep.Available {
		t.Fatalf("overview: %d %s", code, body)
	}
	got := map[string]int64{}
	for _, hc := range rep.Hours {
		got[hc.Kind+"/"+hc.Rule] += hc.Count
	}
	if got["verdict/fingerprint"] != 3 || got["register/"] != 1 {
		t.Errorf("overview counts %v", got)
	}
	for _, bad := range []string{"0", "31", "x"} {
		if code, _, _ := c.do("GET", "/ui/overview?days="+bad, "", nil); code != http.StatusBadRequest {
			t.Errorf("days=%s: %d", bad, code)
		}
	}
}

// Calls and lockdown through the console: viewers read (masked) and are
// refused hangups, unmasking and the switch; operators may do all three,
// and the audit names them.
func TestCallsAndLockdownRoles(t *testing.T) {
	h := newHarness(t, config.UI{})
	op := h.addUser("olga", users.Operator)
	vw := h.addUser("victor", users.Viewer)
	oc, vc := h.client(), h.client()
	oc.login(op, false)
	vc.login(vw, false)
	h.calls.calls = []teardown.Call{{ID: "c1@pbx", Account: "1001", From: "1001", To: "+88216123456",
		Source: netip.MustParseAddrPort("192.0.2.10:5060"), Direction: "outbound", Start: time.Now().Add(-time.Minute), Answer: time.Now()}}

	code, body, _ := vc.do("GET", "/ui/api/v1/calls", "", nil)
	if code != http.StatusOK || !strings.Contains(body, "c1@pbx") || strings.Contains(body, "+88216123456") {
		t.Errorf("viewer calls (masked): %d %s", code, body)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/ui/api/v1/calls?unmask=true", ""},
		{"POST", "/ui/api/v1/calls/c1@pbx/hangup", ""},
		{"PUT", "/ui/api/v1/lockdown", `{"on":true,"hangup":true}`},
		{"POST", "/ui/api/v1/calls/c1@pbx/deadline", `{"after":"1m"}`},
	} {
		if code, resp, _ := vc.do(tc.method, tc.path, tc.body, nil); code != http.StatusForbidden {
			t.Errorf("viewer %s %s: %d %s, want 403", tc.method, tc.path, code, resp)
		}
	}
	if len(h.calls.hungUp()) != 0 || h.pol.isOn() {
		t.Fatal("a viewer's hangup or lockdown went through")
	}
	if code, body, _ := vc.do("GET", "/ui/api/v1/lockdown", "", nil); code != http.StatusOK || !strings.Contains(body, `"on": false`) {
		t.Errorf("viewer lockdown state: %d %s", code, body)
	}
	// Without the CSRF token the operator is refused too.
	if code, _, _ := oc.do("POST", "/ui/api/v1/calls/c1@pbx/hangup", "", map[string]string{CSRFHeader: ""}); code != http.StatusForbidden {
		t.Errorf("hangup without CSRF: %d", code)
	}
	if code, body, _ := oc.do("GET", "/ui/api/v1/calls?unmask=true", "", nil); code != http.StatusOK || !strings.Contains(body, "+88216123456") {
		t.Errorf("operator unmasked calls: %d %s", code, body)
	}
	if code, body, _ := oc.do("POST", "/ui/api/v1/calls/c1@pbx/hangup", "", nil); code != http.StatusOK {
		t.Errorf("operator hangup: %d %s", code, body)
	}
	if got := h.calls.hungUp(); len(got) != 1 || got[0] != "c1@pbx" {
		t.Errorf("hung up %q", got)
	}
	if code, body, _ := oc.do("PUT", "/ui/api/v1/lockdown", `{"on":true}`, nil); code != http.StatusOK || !h.pol.isOn() {
		t.Errorf("operator lockdown on: %d %s", code, body)
	}
	// Deadlines stay with admins.
	if code, _, _ := oc.do("POST", "/ui/api/v1/calls/c1@pbx/deadline", `{"after":"1m"}`, nil); code != http.StatusForbidden {
		t.Errorf("operator deadline: %d, want 403", code)
	}
	if err := h.st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs, err := h.st.Query(context.Background(), store.Filter{Kinds: []event.Kind{event.KindAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		a := r.Event.(*event.Admin)
		got = append(got, a.Actor+" "+a.Action+" "+a.Target)
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{"olga@127.0.0.1 hangup c1@pbx", "olga@127.0.0.1 unmask"} {
		if !strings.Contains(all, want) {
			t.Errorf("audit lacks %q:\n%s", want, all)
		}
	}
}

// seedLoss records two refused calls with loss estimates, one warned
// (passed) call, and two connected calls (one priced, one not) today, and
// one refused call three days ago.
func seedLoss(t *testing.T, st store.Store, now time.Time) {
	t.Helper()
	for _, ev := range []event.Event{
		&event.Verdict{Meta: event.Meta{Time: now}, Action: "reject", Code: 403, Rule: "call_policy", Loss: "25.00 USD"},
		&event.Verdict{Meta: event.Meta{Time: now}, Action: "reject", Code: 403, Rule: "call_policy", Loss: "12.50 USD"},
		&event.Verdict{Meta: event.Meta{Time: now}, Action: "pass", Rule: "call_policy", Loss: "99.00 USD"},
		&event.Verdict{Meta: event.Meta{Time: now}, Action: "drop", Rule: "fingerprint"},
		&event.Verdict{Meta: event.Meta{Time: now.Add(-72 * time.Hour)}, Action: "reject", Rule: "call_policy", Loss: "7.00 USD"},
		&event.CallEnded{Meta: event.Meta{Time: now}, Account: "1001", Destination: "+88216123456", Billsec: 90 * time.Second, Duration: 95 * time.Second},
		&event.CallEnded{Meta: event.Meta{Time: now}, Account: "1001", Destination: "+4420123456", Billsec: 600 * time.Second},
		&event.CallEnded{Meta: event.Meta{Time: now}, Account: "1001", Destination: "+88216999999", Code: 486},
	} {
		st.Record(ev)
	}
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLossPage(t *testing.T) {
	h := newHarness(t, config.UI{})
	c := h.client()
	c.login(h.addUser("victor", users.Viewer), false)
	now := time.Now().UTC()
	seedLoss(t, h.st, now)
	get := func(c *client, q string) LossReply {
		t.Helper()
		code, body, _ := c.do("GET", "/ui/loss"+q, "", nil)
		var rep LossReply
		if code != http.StatusOK || json.Unmarshal([]byte(body), &rep) != nil {
			t.Fatalf("loss%s: %d %s", q, code, body)
		}
		return rep
	}
	rep := get(c, "?days=7")
	want := []LossDay{{Currency: "USD", Prevented: "44.50", Refused: 3, Incurred: "5.00", Connected: 1}}
	if !rep.Available || !rep.Rates || fmt.Sprint(rep.Totals) != fmt.Sprint(want) {
		t.Errorf("7-day totals %+v, want %+v", rep, want)
	}
	if len(rep.Days) != 2 || rep.Days[0].Day != now.Format(time.DateOnly) || rep.Days[0].Prevented != "37.50" || rep.Days[1].Prevented != "7.00" {
		t.Errorf("days %+v", rep.Days)
	}
	if rep := get(c, "?days=1"); len(rep.Totals) != 1 || rep.Totals[0].Prevented != "37.50" || rep.Totals[0].Incurred != "5.00" {
		t.Errorf("1-day totals %+v", rep.Totals)
	}
	for _, bad := range []string{"0", "31", "x"} {
		if code, _, _ := c.do("GET", "/ui/loss?days="+bad, "", nil); code != http.StatusBadRequest {
			t.Errorf("days=%s: %d", bad, code)
		}
	}
	if code, _, _ := h.client().do("GET", "/ui/loss", "", nil); code != http.StatusUnauthorized {
		t.Errorf("loss without a session: %d", code)
	}
	// Without a rate table nothing incurred is priced, and the reply says so.
	h2 := newHarnessWith(t, config.UI{}, func(o *Options) { o.Prices = func() Pricer { return nil } })
	c2 := h2.client()
	c2.login(h2.addUser("victor", users.Viewer), false)
	seedLoss(t, h2.st, now)
	if rep := get(c2, ""); rep.Rates || len(rep.Totals) != 1 || rep.Totals[0].Incurred != "0.00" || rep.Totals[0].Connected != 0 || rep.Totals[0].Prevented != "44.50" {
		t.Errorf("without rates: %+v", rep)
	}
}

func TestCSVExportDefused(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("victor", users.Viewer)
	c := h.client()
	c.login(u, false)
	h.st.Record(&event.AuthFailure{Meta: event.Meta{Time: time.Now()}, SIP: event.SIP{Method: "REGISTER", UserAgent: "=HYPERLINK(\"http://x\")", FromUser: "13812345678"}, Account: "13812345678", Code: 403})
	h.st.Flush(context.Background())
	code, body, hdr := c.do("GET", "/ui/api/v1/events.csv?since=1h", "", nil)
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv: %d %s", code, body)
	}
	if !strings.Contains(body, `'=HYPERLINK`) || strings.Contains(body, "13812345678") || !strings.Contains(body, "138****5678") {
		t.Errorf("csv not defused or not masked:\n%s", body)
	}
}

func TestPreferredLang(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "en"}, {"zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"}, {"en-US,en;q=0.9,zh-CN;q=0.8", "en"},
		{"fr-FR,zh-TW;q=0.5", "zh-CN"}, {"de", "en"}, {"en;q=0.1, zh;q=0.9", "zh-CN"}, {"zh;q=bogus", "en"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", tc.in)
		if got := preferredLang(r); got != tc.want {
			t.Errorf("preferredLang(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The page's own JavaScript and CSS, with the vendored chart library,
// must stay under 500 KB gzip-compressed.
func TestAssetsSize(t *testing.T) {
	var total, raw int
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".js") || strings.HasSuffix(p, ".css") || strings.HasSuffix(p, ".html")) {
			return err
		}
		data, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(data)
		zw.Close()
		total += b.Len()
		raw += len(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("console assets: %d bytes, %d gzip-compressed", raw, total)
	if total == 0 || total > 500*1024 {
		t.Errorf("console assets are %d bytes compressed, budget 500 KB", total)
	}
}

// Every key the English texts have, the Chinese texts have, and the
// reverse; a page showing a raw key would be a missing translation.
func TestTranslationsComplete(t *testing.T) {
	data, err := fs.ReadFile(assets, "assets/i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	zh := strings.Index(s, `"zh-CN": {`)
	en, zhPart := s[:zh], s[zh:]
	keys := func(part string) map[string]bool {
		m := map[string]bool{}
		for _, f := range strings.Split(part, `"`) {
			if strings.Count(f, ".") == 1 && !strings.ContainsAny(f, " ，。") && len(f) < 40 && f != "zh-CN" {
				m[f] = true
			}
		}
		return m
	}
	ek, zk := keys(en), keys(zhPart)
	for k := range ek {
		if !zk[k] && !strings.HasSuffix(k, ".") {
			t.Errorf("zh-CN lacks %q", k)
		}
	}
	for k := range zk {
		if !ek[k] && !strings.HasSuffix(k, ".") {
			t.Errorf("en lacks %q", k)
		}
	}
	if len(ek) < 100 {
		t.Errorf("found only %d keys: the check is not reading the file", len(ek))
	}
	// Every key the pages ask for is in both dictionaries.
	for file, least := range map[string]int{"app.js": 50, "keys.js": 20} {
		app, err := fs.ReadFile(assets, "assets/"+file)
		if err != nil {
			t.Fatal(err)
		}
		used := regexp.MustCompile(`\b(?:t|heading|stat|field)\([^"\n]*"([a-z]+\.[a-zA-Z]+)"`).FindAllStringSubmatch(string(app), -1)
		if len(used) < least {
			t.Errorf("found only %d keys used in %s: the check is not reading it", len(used), file)
		}
		for _, m := range used {
			if !ek[m[1]] || !zk[m[1]] {
				t.Errorf("%s uses %q, missing from a dictionary (en %v, zh-CN %v)", file, m[1], ek[m[1]], zk[m[1]])
			}
		}
	}
}

// DNS rebinding: a page on an attacker's name that resolves to the
// console's address passes the Origin check (Origin and Host agree), so
// plain-HTTP consoles accept only IP addresses and localhost as Host.
func TestHostCheck(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("alice", users.Admin)
	b, _ := json.Marshal(LoginBody{Name: "alice", Password: testPassword, Code: h.code(u, false)})
	for _, tc := range []struct {
		host string
		want int
	}{
		{"evil.example:9061", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.example", http.StatusMisdirectedRequest},
		{"localhost:9061", http.StatusOK},
		{"[::1]:9061", http.StatusOK},
		{"127.0.0.1:9061", http.StatusOK},
	} {
		req := httptest.NewRequest("GET", "http://"+tc.host+"/ui/", nil)
		req.Host = tc.host
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		h.con.Handler().ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("Host %s: %d, want %d", tc.host, rec.Code, tc.want)
		}
	}
	req := httptest.NewRequest("POST", "http://evil.example:9061/ui/login", bytes.NewReader(b))
	req.Host = "evil.example:9061"
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Origin", "http://evil.example:9061")
	rec := httptest.NewRecorder()
	h.con.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusMisdirectedRequest {
		t.Errorf("rebinding login: %d %s", rec.Code, rec.Body)
	}
	// Behind a TLS proxy the name is the proxy's, pinned by its certificate.
	ui := config.Default().UI
	ui.SecureCookies = true
	h2 := newHarness(t, ui)
	req = httptest.NewRequest("GET", "http://console.example/ui/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec = httptest.NewRecorder()
	h2.con.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("named host behind a TLS proxy: %d", rec.Code)
	}
}
