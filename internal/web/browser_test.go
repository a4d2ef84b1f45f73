package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/teardown"
	"github.com/tollguard/tollguard/internal/testpeer"
	"github.com/tollguard/tollguard/internal/users"
)

// apiBan places a ban through the admin API with the bearer token, as a
// script would.
func (h *harness) apiBan(t *testing.T, ip, reason string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(h.dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"ip":%q,"reason":%q}`, ip, reason)
	req, _ := http.NewRequest("POST", h.srv.URL+"/api/v1/bans", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("API ban: %v %v", res.Status, err)
	}
	res.Body.Close()
}

var pageNames = []string{"overview", "attackers", "affected", "bans", "events", "report", "audit", "calls", "lockdown", "loss"}

func TestBrowserConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	h := newHarness(t, config.UI{})
	op := h.addUser("olga", users.Operator)
	vw := h.addUser("victor", users.Viewer)
	// Attacker-chosen text the pages will show.
	xss := `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`
	now := time.Now()
	h.st.Record(&event.AuthFailure{Meta: event.Meta{Time: now}, SIP: event.SIP{Method: "REGISTER", UserAgent: xss, FromUser: "1001", CallID: xss},
		Account: "1001", Code: 403})
	recordAttack(h, now)
	h.st.Flush(context.Background())
	shots := testpeer.ScreenshotDir(t)
	t.Logf("screenshots in %s", shots)

	ctx := testpeer.Chromium(t, 1280, 900)
	testpeer.Step(t, ctx, "opening the console", 15*time.Second, chromedp.Navigate(h.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	testpeer.Screenshot(t, ctx, shots, "login-en")

	// A wrong TOTP code is refused.
	good := h.code(op, false)
	wrong := string(rune('0'+(good[0]-'0'+1)%10)) + good[1:]
	testpeer.ConsoleLogin(t, ctx, "olga", testPassword, wrong)
	testpeer.Step(t, ctx, "wrong code refused", 10*time.Second, chromedp.Poll[chromedp.Void](`document.getElementById("login-error").textContent.includes("Wrong")`))
	// The right one logs in.
	testpeer.ConsoleLogin(t, ctx, "olga", testPassword, good)
	testpeer.Step(t, ctx, "logged in", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#ov-days")))
	// Seven days are charted per day, with the day's counts summed.
	testpeer.Eval[bool](t, ctx, `(s => { s.value = "7"; s.dispatchEvent(new Event("change")); return true })(document.getElementById("ov-days"))`)
	testpeer.Step(t, ctx, "overview per day", 10*time.Second,
		chromedp.Poll[chromedp.Void](`document.getElementById("page").textContent.includes("Attacks stopped per day") && document.querySelector("#chart-rules .u-over") !== null`),
		chromedp.Poll[chromedp.Void](`document.getElementById("stat-stopped").textContent === "40"`))
	testpeer.Screenshot(t, ctx, shots, "overview-week-en")
	testpeer.Eval[bool](t, ctx, `(s => { s.value = "1"; s.dispatchEvent(new Event("change")); return true })(document.getElementById("ov-days"))`)
	// The same code replayed from the page is refused.
	replay := testpeer.Eval[int](t, ctx, fmt.Sprintf(`fetch("login",{method:"POST",headers:{"Content-Type":"application/json"},body:JSON.stringify({name:"olga",password:%q,code:%q})}).then(r=>r.status)`, testPassword, good))
	if replay != http.StatusUnauthorized {
		t.Errorf("replayed TOTP from the browser: %d, want 401", replay)
	}
	// A change without the CSRF token is refused.
	if st := testpeer.Eval[int](t, ctx, `fetch("api/v1/bans",{method:"POST",headers:{"Content-Type":"application/json"},body:'{"ip":"192.0.2.99"}'}).then(r=>r.status)`); st != http.StatusForbidden {
		t.Errorf("POST without the CSRF token: %d, want 403", st)
	}

	// A ban placed through the API appears on the Bans page without a reload.
	testpeer.Step(t, ctx, "bans page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#bans"), chromedp.WaitVisible(chromedp.CSS("#ban-form")))
	testpeer.Eval[bool](t, ctx, `window.__marker = true`)
	h.apiBan(t, "198.51.100.23", xss)
	testpeer.Step(t, ctx, "the ban appears live within 2 s", 2*time.Second, chromedp.WaitVisible(chromedp.CSS(`button.unban[data-ip="198.51.100.23"]`)))
	if !testpeer.Eval[bool](t, ctx, `window.__marker === true`) {
		t.Error("the page reloaded")
	}
	if !testpeer.Eval[bool](t, ctx, fmt.Sprintf(`document.getElementById("ban-list").textContent.includes(%q)`, xss)) {
		t.Error("the attacker's reason is not shown as text")
	}
	// Every control has an accessible name.
	unnamed := testpeer.Eval[[]string](t, ctx, `Array.from(document.querySelectorAll("button, input, select")).filter(e => {
		if (e.getAttribute("aria-label")) return false;
		if (e.id && document.querySelector('label[for="' + e.id + '"]')) return false;
		return !(e.tagName === "BUTTON" && e.textContent.trim());
	}).map(e => e.outerHTML.slice(0, 80))`)
	if len(unnamed) > 0 {
		t.Errorf("controls without an accessible name: %q", unnamed)
	}
	testpeer.Screenshot(t, ctx, shots, "bans-en")
	// Unban from the page: the row goes and the ban is lifted.
	testpeer.Eval[bool](t, ctx, `window.confirm = () => true; true`)
	testpeer.Step(t, ctx, "unban from the page", 5*time.Second,
		chromedp.Click(chromedp.CSS(`button.unban[data-ip="198.51.100.23"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button.unban[data-ip="198.51.100.23"]`)))
	if n := len(h.bans.set.List(time.Now())); n != 0 {
		t.Errorf("%d bans left after the unban", n)
	}

	// Calls: a running call is listed (masked) and hung up from the page.
	h.calls.mu.Lock()
	h.calls.calls = []teardown.Call{
		{ID: "c1@pbx", Account: "1001", From: "1001", To: "+88216123456", Source: netip.MustParseAddrPort("203.0.113.62:5060"),
			Direction: "outbound", Start: now.Add(-3 * time.Minute), Answer: now.Add(-170 * time.Second)},
		{ID: "c2@pbx", Account: "1002", From: "1002", To: "+8613800138000", Source: netip.MustParseAddrPort("192.0.2.20:5060"),
			Direction: "outbound", Start: now.Add(-time.Minute), Answer: now.Add(-50 * time.Second)},
	}
	h.calls.mu.Unlock()
	testpeer.Step(t, ctx, "calls page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#calls"),
		chromedp.WaitVisible(chromedp.CSS(`button.hangup[data-id="c1@pbx"]`)))
	if txt := testpeer.Eval[string](t, ctx, `document.getElementById("calls-list").textContent`); strings.Contains(txt, "+88216123456") || !strings.Contains(txt, "c1@pbx") {
		t.Errorf("calls page (masked): %q", txt)
	}
	testpeer.Eval[bool](t, ctx, `window.confirm = () => true; true`)
	testpeer.Step(t, ctx, "hang up from the page", 5*time.Second,
		chromedp.Click(chromedp.CSS(`button.hangup[data-id="c1@pbx"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button.hangup[data-id="c1@pbx"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button.hangup[data-id="c2@pbx"]`)))
	if got := h.calls.hungUp(); len(got) != 1 || got[0] != "c1@pbx" {
		t.Errorf("hung up from the page: %q", got)
	}
	// Lockdown: on and off from the page, the status following.
	testpeer.Step(t, ctx, "lockdown page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#lockdown"),
		chromedp.WaitVisible(chromedp.CSS("#lockdown-status.off")), chromedp.WaitVisible(chromedp.CSS("#lockdown-hangup")))
	testpeer.Eval[bool](t, ctx, `window.confirm = () => true; true`)
	testpeer.Step(t, ctx, "lockdown on from the page", 5*time.Second, chromedp.Click(chromedp.CSS("#lockdown-toggle")),
		chromedp.WaitVisible(chromedp.CSS("#lockdown-status.on")))
	if !h.pol.isOn() {
		t.Error("the page says lockdown is on; the switch is off")
	}
	testpeer.Screenshot(t, ctx, shots, "lockdown-on-en")
	testpeer.Step(t, ctx, "lockdown off from the page", 5*time.Second, chromedp.Click(chromedp.CSS("#lockdown-toggle")),
		chromedp.WaitVisible(chromedp.CSS("#lockdown-status.off")))
	if h.pol.isOn() {
		t.Error("the page says lockdown is off; the switch is on")
	}
	// Loss: the numbers of the seeded verdicts and connected calls.
	seedLoss(t, h.st, now.UTC())
	testpeer.Step(t, ctx, "loss page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#loss"), chromedp.WaitVisible(chromedp.CSS("#loss-prevented-USD")))
	if got := testpeer.Eval[string](t, ctx, `document.getElementById("loss-prevented-USD").textContent + " / " + document.getElementById("loss-incurred-USD").textContent`); got != "$44.50 / $5.00" {
		t.Errorf("loss totals on the page: %q, want $44.50 / $5.00", got)
	}

	// Every page, in English then in Chinese.
	h.apiBan(t, "203.0.113.50", "scanner")
	for _, lang := range []string{"en", "zh-CN"} {
		testpeer.ConsoleSetLanguage(t, ctx, lang)
		for _, p := range pageNames {
			testpeer.Step(t, ctx, "page "+p, 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#"+p), chromedp.WaitVisible(chromedp.CSS("#page h2")))
			switch p {
			case "calls":
				testpeer.Step(t, ctx, "calls table", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(`button.hangup[data-id="c2@pbx"]`)))
			case "lockdown":
				testpeer.Step(t, ctx, "lockdown status", 5*time.Second, chromedp.WaitVisible(chromedp.CSS("#lockdown-status")))
			case "loss":
				testpeer.Step(t, ctx, "loss totals", 5*time.Second, chromedp.WaitVisible(chromedp.CSS("#loss-prevented-USD")))
			case "events":
				testpeer.Step(t, ctx, "events table", 5*time.Second, chromedp.WaitVisible(chromedp.CSS("#page table")))
			}
			time.Sleep(300 * time.Millisecond) // charts and tables settle before the picture
			testpeer.Screenshot(t, ctx, shots, p+"-"+lang)
		}
	}
	if testpeer.Eval[string](t, ctx, `document.documentElement.lang`) != "zh-CN" {
		t.Error("html lang not switched to zh-CN")
	}
	nav := testpeer.Eval[string](t, ctx, `document.getElementById("nav").textContent`)
	for _, want := range []string{"总览", "攻击来源", "封禁", "事件", "审计记录"} {
		if !strings.Contains(nav, want) {
			t.Errorf("zh-CN navigation lacks %q: %q", want, nav)
		}
	}
	for _, want := range []string{"通话", "紧急锁定", "损失"} {
		if !strings.Contains(nav, want) {
			t.Errorf("zh-CN navigation lacks %q: %q", want, nav)
		}
	}
	if got := testpeer.Eval[string](t, ctx, `document.querySelector("#loss-totals").textContent`); !strings.Contains(got, "已避免损失") || !strings.Contains(got, "44.50") {
		t.Errorf("zh-CN loss page: %q", got)
	}
	if got := testpeer.Eval[string](t, ctx, `document.getElementById("logout").textContent`); got != "退出登录" {
		t.Errorf("logout button in zh-CN: %q", got)
	}
	// Another guard sharing the store: its event shows with its node.
	peerCfg := config.Default().Store
	peerCfg.DSN = filepath.Join(h.dir, "tollguard.db")
	peer, err := store.Open(context.Background(), peerCfg, t.TempDir(), store.Options{Node: "peer-b"})
	if err != nil {
		t.Fatal(err)
	}
	peer.Record(&event.AuthFailure{Meta: event.Meta{Time: time.Now(), Source: netip.MustParseAddrPort("198.51.100.77:5060")}, Account: "1001", Code: 403})
	if err := peer.Close(); err != nil {
		t.Fatal(err)
	}
	// The attacker's markup never ran.
	testpeer.Step(t, ctx, "events page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#events"), chromedp.WaitVisible(chromedp.CSS("#page table")))
	if got := testpeer.Eval[string](t, ctx, `document.querySelector("#page table th").textContent + "|" + [...document.querySelectorAll("#page table td")].map(td => td.textContent).join("|")`); !strings.HasPrefix(got, "节点|") || !strings.Contains(got, "|peer-b|") || !strings.Contains(got, "198.51.100.77") {
		t.Errorf("events of several nodes: want a node column naming peer-b, got %.300q", got)
	}
	if !testpeer.Eval[bool](t, ctx, fmt.Sprintf(`document.getElementById("page").textContent.includes(%q)`, xss)) {
		t.Error("the attacker's user agent is not shown as text")
	}
	if testpeer.Eval[bool](t, ctx, `window.__xss !== undefined`) {
		t.Fatal("attacker-supplied markup ran in the console")
	}
	// The choice survives a reload.
	testpeer.Step(t, ctx, "reload", 10*time.Second, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#logout")))
	if got := testpeer.Eval[string](t, ctx, `document.querySelector('.nav a[data-page="bans"]').textContent`); got != "封禁" {
		t.Errorf("after a reload the language is lost: %q", got)
	}
	testpeer.ConsoleSetLanguage(t, ctx, "en")
	// Everything the page loaded came from the console itself.
	loaded := testpeer.Eval[[]string](t, ctx, `performance.getEntriesByType("resource").map(e => e.name)`)
	if len(loaded) < 4 {
		t.Errorf("only %d resources recorded: %q", len(loaded), loaded)
	}
	for _, u := range loaded {
		if !strings.HasPrefix(u, h.srv.URL+"/ui/") {
			t.Errorf("the page requested %q, outside the console", u)
		}
	}

	// A viewer: no unban button, and the API refuses the unban.
	testpeer.Step(t, ctx, "log out", 10*time.Second, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	testpeer.ConsoleLogin(t, ctx, "victor", testPassword, h.code(vw, false))
	testpeer.Step(t, ctx, "viewer bans page", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#logout")),
		chromedp.Navigate(h.srv.URL+"/ui/#bans"), chromedp.WaitVisible(chromedp.CSS("#bans-readonly")),
		chromedp.Poll[chromedp.Void](`document.getElementById("ban-list").textContent.includes("203.0.113.50")`))
	if n := testpeer.Eval[int](t, ctx, `document.querySelectorAll("button.unban, #ban-form").length`); n != 0 {
		t.Errorf("viewer sees %d ban/unban controls", n)
	}
	st := testpeer.ConsoleCall(t, ctx, "DELETE", "api/v1/bans/203.0.113.50", "")
	if st != http.StatusForbidden || len(h.bans.set.List(time.Now())) != 1 {
		t.Errorf("viewer unban through the API: %d, %d bans left; want 403 and 1", st, len(h.bans.set.List(time.Now())))
	}
	testpeer.Screenshot(t, ctx, shots, "bans-viewer-en")
	// Nor may the viewer hang up or turn the lockdown switch.
	testpeer.Step(t, ctx, "viewer calls page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#calls"),
		chromedp.Poll[chromedp.Void](`document.getElementById("calls-list").textContent.includes("c2@pbx")`))
	if n := testpeer.Eval[int](t, ctx, `document.querySelectorAll("button.hangup, #calls-unmask").length`); n != 0 {
		t.Errorf("viewer sees %d hangup/unmask controls", n)
	}
	st = testpeer.ConsoleCall(t, ctx, "POST", "api/v1/calls/c2@pbx/hangup", "")
	if st != http.StatusForbidden || len(h.calls.Calls()) != 1 {
		t.Errorf("viewer hangup through the API: %d, %d calls left; want 403 and 1", st, len(h.calls.Calls()))
	}
	testpeer.Step(t, ctx, "viewer lockdown page", 10*time.Second, chromedp.Navigate(h.srv.URL+"/ui/#lockdown"),
		chromedp.WaitVisible(chromedp.CSS("#lockdown-readonly")), chromedp.WaitVisible(chromedp.CSS("#lockdown-status")))
	if n := testpeer.Eval[int](t, ctx, `document.querySelectorAll("#lockdown-toggle, #lockdown-hangup").length`); n != 0 {
		t.Errorf("viewer sees %d lockdown controls", n)
	}
	st = testpeer.ConsoleCall(t, ctx, "PUT", "api/v1/lockdown", `{"on":true}`)
	if st != http.StatusForbidden || h.pol.isOn() {
		t.Errorf("viewer lockdown through the API: %d, on=%v; want 403 and off", st, h.pol.isOn())
	}
	testpeer.Screenshot(t, ctx, shots, "lockdown-viewer-en")
}

// TestBrowserPhone renders the overview on a phone-sized screen: the menu
// collapses behind a button and nothing overflows sideways.
func TestBrowserPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	h := newHarness(t, config.UI{})
	u := h.addUser("olga", users.Operator)
	recordAttack(h, time.Now())
	h.st.Flush(context.Background())
	ctx := testpeer.Chromium(t, 1280, 900)
	shots := testpeer.ScreenshotDir(t)
	// Headless windows are at least 500 px wide: emulate the phone's screen.
	testpeer.Step(t, ctx, "open", 15*time.Second, chromedp.EmulateViewport(390, 844), chromedp.Navigate(h.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	testpeer.ConsoleLogin(t, ctx, "olga", testPassword, h.code(u, false))
	testpeer.Step(t, ctx, "overview", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#menu-toggle")), chromedp.WaitVisible(chromedp.CSS("#ov-days")))
	if testpeer.Eval[bool](t, ctx, `getComputedStyle(document.getElementById("nav")).display !== "none"`) {
		t.Error("the navigation is not collapsed on a phone")
	}
	testpeer.Step(t, ctx, "open the menu", 5*time.Second, chromedp.Click(chromedp.CSS("#menu-toggle")), chromedp.WaitVisible(chromedp.CSS(`.nav a[data-page="bans"]`)))
	if w := testpeer.Eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 400 {
		wide := testpeer.Eval[[]string](t, ctx, `Array.from(document.querySelectorAll("body *")).filter(e => e.getBoundingClientRect().right > 400).map(e => e.tagName + "#" + e.id + "." + e.className).slice(0, 10)`)
		t.Errorf("page is %d px wide on a 390 px screen; too wide: %q", w, wide)
	}
	testpeer.Screenshot(t, ctx, shots, "overview-phone-en")
}

// recordAttack stores a morning's worth of attack for the pages and their
// screenshots: a scanner, a password cracker that gets in and calls an
// expensive number, an enumerator, and the verdicts and bans that stopped
// them, spread over the last hours.
func recordAttack(h *harness, now time.Time) {
	src := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 5060)
	}
	at := func(min int) time.Time { return now.Add(-time.Duration(min) * time.Minute) }
	rules := []string{"fingerprint", "register_failure[0]", "enumeration", "flood"}
	for i := range 40 {
		h.st.Record(&event.Verdict{Meta: event.Meta{Time: at(i * 17), Source: src(60 + i%4)}, Rule: rules[i%4], Action: "drop"})
	}
	for i := range 6 {
		acct := fmt.Sprintf("10%02d", i+1)
		h.st.Record(&event.AuthFailure{Meta: event.Meta{Time: at(90 - i), Source: src(61), Transport: "udp"},
			SIP: event.SIP{Method: "REGISTER", UserAgent: "friendly-scanner", FromUser: acct}, Account: acct, Code: 403})
	}
	for i := range 4 {
		h.st.Record(&event.AuthFailure{Meta: event.Meta{Time: at(60 - i), Source: src(62), Transport: "udp"},
			SIP: event.SIP{Method: "REGISTER", UserAgent: "sipcli/v1.8", FromUser: "1001"}, Account: "1001", Code: 401})
	}
	h.st.Record(&event.Register{Meta: event.Meta{Time: at(55), Source: src(62)}, SIP: event.SIP{UserAgent: "sipcli/v1.8"}, Account: "1001", Expires: 3600})
	h.st.Record(&event.CallAttempt{Meta: event.Meta{Time: at(50), Source: src(62)}, SIP: event.SIP{CallID: "a84b4c76e66710"}, Account: "1001", Destination: "00881612345678"})
	h.st.Record(&event.Register{Meta: event.Meta{Time: at(5), Source: netip.MustParseAddrPort("192.0.2.20:5060")}, Account: "1002", Expires: 3600})
	for i, r := range []string{"fingerprint", "enumeration", "register_failure[0]"} {
		h.st.Record(&event.Ban{Meta: event.Meta{Time: at(80 - 10*i), Source: src(60 + i)}, Scope: "ip", Value: src(60+i).Addr().String() + "/32", Rule: r, Reason: r, Until: now.Add(time.Hour)})
	}
}
