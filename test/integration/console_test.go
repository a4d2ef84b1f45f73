package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/testpeer"
	consoleusers "github.com/tollguard/tollguard/internal/users"
)

// consolePassword is every console user's password in these tests.
const consolePassword = "correct horse battery staple"

// hostileUA is the attack's User-Agent: markup that would call alert if
// the console ever put attacker text into the page as HTML.
const hostileUA = `<img src=x onerror=alert(1)>`

// hostileUser is the digest user name of a second attacker, which the
// guard reports as the account tried.
const hostileUser = `<svg onload=alert(2)>`

// addConsoleUser runs `tollguard user add NAME --role ROLE
// --password-stdin` against g's data directory, as an operator enrols a
// user, and returns the TOTP secret from the otpauth:// URI it prints.
func addConsoleUser(t *testing.T, g *guard, name, role string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tollguardBin, "user", "add", name, "--role", role, "--password-stdin", "-c", g.Config)
	cmd.Stdin = strings.NewReader(consolePassword + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tollguard user add %s: %v\n%s", name, err, out)
	}
	m := regexp.MustCompile(`otpauth://\S+`).Find(out)
	if m == nil {
		t.Fatalf("tollguard user add %s printed no otpauth:// URI:\n%s", name, out)
	}
	u, err := url.Parse(string(m))
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("otpauth URI %q: %v", m, err)
	}
	return u.Query().Get("secret")
}

// totp is the current code of secret.
func totp(t *testing.T, secret string) string {
	t.Helper()
	c, err := consoleusers.Code(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// banCell is a JavaScript expression: whether the page's ban list has a
// cell that is exactly the address %q.
const banCell = `(() => { const l = document.getElementById("ban-list"); return l !== null && Array.from(l.querySelectorAll("td")).some((td) => td.textContent === %q); })()`

// watchBanRow makes the page of ctx note in window.__shown the time (ms
// since the epoch) at which ip first appeared in its ban list, and record
// in window.__csp every Content-Security-Policy violation (which injected
// markup would cause). The marker window.__marker is lost if the page
// reloads.
func watchBanRow(t *testing.T, ctx context.Context, ip netip.Addr) {
	t.Helper()
	ok := testpeer.Eval[bool](t, ctx, `(() => {
		window.__marker = true; window.__shown = 0; window.__csp = [];
		document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
		const seen = () => `+fmt.Sprintf(banCell, ip.String())+`;
		new MutationObserver(() => { if (!window.__shown && seen()) { window.__shown = Date.now(); } })
			.observe(document.body, { childList: true, subtree: true, characterData: true });
		return !seen();
	})()`)
	if !ok {
		t.Fatalf("%s is in the ban list before the attack", ip)
	}
}

// adminActions returns the audit trail as `tollguard events --kind admin
// --json` prints it, newest first.
func (g *guard) adminActions() []event.Admin {
	g.t.Helper()
	out, err := g.cli("events", "--kind", "admin", "--json")
	if err != nil {
		g.t.Fatal(err)
	}
	var rep api.EventsReply
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		g.t.Fatalf("parsing `tollguard events --json`: %v\n%s", err, out)
	}
	acts := make([]event.Admin, 0, len(rep.Records))
	for _, r := range rep.Records {
		var a event.Admin
		if err := json.Unmarshal(r.Event, &a); err != nil {
			g.t.Fatalf("admin event %s: %v", r.Event, err)
		}
		acts = append(acts, a)
	}
	return acts
}

// injected counts the elements of the page an attacker's markup could have
// added: images, scripts, frames and anything with an inline handler.
const injected = `document.querySelectorAll("img, script:not([src]), iframe, object, embed, [onerror], [onload]").length`

// TestConsoleLiveBan (issue #13): the console on ui.listen of a running
// guard, Kamailio behind it. An operator and a viewer, enrolled with
// `tollguard user add`, log in with password and TOTP in headless Chromium
// and open the Bans page. svcrack, with markup as its User-Agent, attacks
// through the guard's SIP port from its own address: the jail bans it, and
// the ban shows on both pages within 2 s of being decided, without a
// reload. The viewer has no unban control and the API refuses the
// viewer's unban; the operator unbans from the page (confirming the
// dialog), the row leaves both pages, and an OPTIONS and a REGISTER from
// the attacker's address reach Kamailio and get its answers through the
// guard. The attacker's markup is shown as text on the Attackers and Bans
// pages and never becomes an element, a CSP violation or a dialog.
func TestConsoleLiveBan(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	t.Parallel()
	k, _ := pbx(t)
	addr := testpeer.LoopbackAddr(t)
	ui := netip.AddrPortFrom(addr, uint16(testpeer.FreePort(t, addr)))
	g := startGuard(t, guardOptions{Addr: addr, Upstream: k.Addr, Extra: fmt.Sprintf("ui: {listen: %q}\n", ui.String())})
	opSecret := addConsoleUser(t, g, "olga", "operator")
	vwSecret := addConsoleUser(t, g, "victor", "viewer")
	base := "http://" + ui.String() + "/ui/"
	// With ui.listen the admin listener does not serve the console.
	if res, err := http.Get("http://" + g.Admin.String() + "/ui/"); err != nil {
		t.Fatal(err)
	} else {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK || strings.Contains(string(body), "static/app.js") {
			t.Errorf("GET /ui/ on admin.listen with ui.listen set: %s; want no console there", res.Status)
		}
	}
	attacker := testpeer.LoopbackAddr(t)
	shots := testpeer.ScreenshotDir(t)
	t.Logf("screenshots in %s", shots)

	// The operator's tab, and the viewer's in a browser context of its own
	// (its own cookies).
	op := testpeer.Chromium(t, 1280, 900)
	opDialogs := testpeer.WatchDialogs(t, op)
	vw, vcancel := chromedp.NewContext(op, chromedp.WithNewBrowserContext())
	t.Cleanup(vcancel)
	if err := chromedp.Do(vw); err != nil {
		t.Fatalf("opening the viewer's tab: %v", err)
	}
	vwDialogs := testpeer.WatchDialogs(t, vw)
	for _, who := range []struct {
		ctx          context.Context
		name, secret string
	}{{op, "olga", opSecret}, {vw, "victor", vwSecret}} {
		testpeer.Step(t, who.ctx, "opening the console as "+who.name, 15*time.Second, chromedp.Navigate(base))
		testpeer.ConsoleLogin(t, who.ctx, who.name, consolePassword, totp(t, who.secret))
		testpeer.Step(t, who.ctx, who.name+" logged in, bans page", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#logout")),
			chromedp.Navigate(base+"#bans"), chromedp.WaitVisible(chromedp.CSS("#ban-list")),
			chromedp.WaitVisible(chromedp.CSS("#live.on")))
		watchBanRow(t, who.ctx, attacker)
	}

	// The attack: svcrack through the guard, a phone's worth of guesses
	// at 1001 from the attacker's own address.
	dict := testpeer.WriteDictionary(t, "123456", "password", "000000", "qwerty", "letmein", "111111")
	r := testpeer.Sipvicious(t, testpeer.SipviciousOptions{Tool: "svcrack", Local: attacker, Target: g.SIP(),
		UserAgent: hostileUA, Args: []string{"-u", "1001", "-d", dict, "--maximumtime", "3"}})
	b := g.waitBanned(attacker, 3*time.Second)
	if len(b) == 0 {
		t.Fatalf("%s not banned by the attack; bans: %+v\n%s", attacker, g.bans(), r.Output)
	}
	decided := b[0].At
	if k.Count("authfail", "user=1001 ") == 0 {
		t.Errorf("no guess reached kamailio: the attack was not exercised\n%s", r.Output)
	}
	requireDropped(t, g, attacker)

	// The ban shows on both pages within 2 s of being decided (timed by
	// the pages themselves), and neither reloaded.
	for _, who := range []struct {
		name string
		ctx  context.Context
	}{{"operator", op}, {"viewer", vw}} {
		testpeer.Step(t, who.ctx, who.name+": the ban appears", 5*time.Second,
			chromedp.Poll[chromedp.Void](`window.__shown > 0`))
		shown := time.UnixMilli(int64(testpeer.Eval[float64](t, who.ctx, `window.__shown`)))
		lag := shown.Sub(decided)
		t.Logf("%s page showed the ban %v after it was decided", who.name, lag.Round(time.Millisecond))
		if lag > 2*time.Second || lag < -50*time.Millisecond {
			t.Errorf("%s page showed the ban %v after it was decided (at %s); want within 2 s", who.name, lag, decided.Format(time.RFC3339Nano))
		}
		if !testpeer.Eval[bool](t, who.ctx, `window.__marker === true`) {
			t.Errorf("%s page reloaded", who.name)
		}
	}
	unbanButton := fmt.Sprintf(`button.unban[data-ip=%q]`, attacker.String())
	testpeer.Step(t, op, "operator's unban button", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(unbanButton)))

	// A second source puts markup in its digest user name; Kamailio
	// refuses the unknown user and the guard bans the source too.
	sprayer := testpeer.LoopbackAddr(t)
	for i := range maxRetry {
		auth := fmt.Sprintf(`Authorization: Digest username=%q, realm="pbx.test", nonce="%d", uri="sip:%s", response="%032d"`, hostileUser, i, g.Addr, i)
		if code, err := testpeer.Send(sprayer, g.SIP(), testpeer.Request{Method: "REGISTER", User: "1001", From: "1001", UserAgent: hostileUA,
			Headers: []string{auth}}, 2*time.Second); err != nil || code != http.StatusForbidden {
			t.Errorf("REGISTER %d with user name %q: %d %v; want Kamailio's 403", i+1, hostileUser, code, err)
		}
	}
	if b := g.waitBanned(sprayer, 3*time.Second); len(b) == 0 {
		t.Errorf("%s not banned after %d unknown user names; bans: %+v", sprayer, maxRetry, g.bans())
	}

	// Screenshots of the live bans in both languages. A language switch
	// redraws the page, which fetches the recent failures again.
	// Both attackers' failures listed: the last table of the page has six
	// rows.
	failuresListed := `(() => { const ts = document.querySelectorAll("#page table"); return ts.length >= 3 && ts[ts.length - 1].querySelectorAll("tbody tr").length >= 6; })()`
	checkFailures := func(lang string) {
		t.Helper()
		js := fmt.Sprintf(`Array.from(document.querySelectorAll("#page td")).some((td) => td.textContent === %q)`, hostileUser)
		if !testpeer.Eval[bool](t, op, js) {
			t.Errorf("bans page (%s): the attacker's user name is not shown as text: %q", lang,
				testpeer.Eval[string](t, op, `document.getElementById("page").textContent`))
		}
		if n := testpeer.Eval[int](t, op, injected); n != 0 {
			t.Errorf("bans page (%s): %d elements injected", lang, n)
		}
	}
	testpeer.ConsoleSetLanguage(t, op, "zh-CN")
	testpeer.Step(t, op, "bans page in Chinese", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(unbanButton)),
		chromedp.Poll[chromedp.Void](`document.getElementById("page").textContent.includes("最近的认证失败")`),
		chromedp.Poll[chromedp.Void](failuresListed), chromedp.Poll[chromedp.Void](fmt.Sprintf(banCell, sprayer.String())))
	if got := testpeer.Eval[string](t, op, fmt.Sprintf(`document.querySelector(%q).textContent`, unbanButton)); got != "解除封禁" {
		t.Errorf("unban button in zh-CN: %q", got)
	}
	checkFailures("zh-CN")
	time.Sleep(300 * time.Millisecond) // tables settle before the picture
	testpeer.Screenshot(t, op, shots, "bans-live-ban-zh-CN")
	testpeer.ConsoleSetLanguage(t, op, "en")
	testpeer.Step(t, op, "bans page in English", 5*time.Second, chromedp.WaitVisible(chromedp.CSS(unbanButton)),
		chromedp.Poll[chromedp.Void](`document.getElementById("page").textContent.includes("Recent authentication failures")`),
		chromedp.Poll[chromedp.Void](failuresListed))
	checkFailures("en")
	time.Sleep(300 * time.Millisecond)
	testpeer.Screenshot(t, op, shots, "bans-live-ban-en")

	// The viewer sees the ban but no control, and the API refuses the
	// viewer's unban.
	if n := testpeer.Eval[int](t, vw, `document.querySelectorAll("button.unban, #ban-form").length`); n != 0 {
		t.Errorf("viewer sees %d ban/unban controls", n)
	}
	if !testpeer.Eval[bool](t, vw, `document.getElementById("bans-readonly") !== null`) {
		t.Error("viewer's bans page is not marked read-only")
	}
	st := testpeer.ConsoleCall(t, vw, "DELETE", "api/v1/bans/"+attacker.String(), "")
	if st != http.StatusForbidden {
		t.Errorf("viewer's unban through the API: %d, want 403", st)
	}
	if len(g.bansOf(attacker)) == 0 {
		t.Fatal("the viewer's refused unban lifted the ban")
	}
	testpeer.Screenshot(t, vw, shots, "bans-live-ban-viewer-en")

	// The attacker's User-Agent is shown as text on the Attackers page.
	testpeer.Step(t, op, "attackers page", 10*time.Second, chromedp.Navigate(base+"#attackers"),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.getElementById("page").textContent.includes(%q)`, attacker.String())))
	if !testpeer.Eval[bool](t, op, fmt.Sprintf(`document.getElementById("page").textContent.includes(%q)`, hostileUA)) {
		t.Errorf("the attacker's User-Agent is not shown as text on the Attackers page: %q",
			testpeer.Eval[string](t, op, `document.getElementById("page").textContent`))
	}
	if n := testpeer.Eval[int](t, op, injected); n != 0 {
		t.Errorf("attackers page: %d elements injected", n)
	}
	testpeer.Screenshot(t, op, shots, "attackers-live-ban-en")

	// Unban from the page: the dialog confirmed, the row leaves both pages.
	testpeer.Step(t, op, "back to the bans page", 10*time.Second, chromedp.Navigate(base+"#bans"), chromedp.WaitVisible(chromedp.CSS(unbanButton)))
	testpeer.Step(t, op, "unban from the page", 10*time.Second,
		chromedp.Click(chromedp.CSS(unbanButton)), chromedp.WaitNotPresent(chromedp.CSS(unbanButton)))
	if d := opDialogs.Seen(); len(d) != 1 || d[0].Type != page.DialogTypeConfirm {
		t.Errorf("dialogs on the operator's page: %+v; want the one unban confirmation", d)
	}
	if b := g.bansOf(attacker); len(b) != 0 {
		t.Errorf("bans of %s after the unban from the page: %+v", attacker, b)
	}
	// The audit trail names the operator; the viewer's refused unban left
	// no unban in it.
	var unbans []string
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		unbans = unbans[:0]
		for _, a := range g.adminActions() {
			if a.Action == "unban" {
				unbans = append(unbans, a.Actor+" "+a.Target)
			}
		}
		if len(unbans) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(unbans) != 1 || !strings.Contains(unbans[0], "olga") || !strings.Contains(unbans[0], attacker.String()) {
		t.Errorf("unbans in the audit trail: %q; want olga's of %s alone", unbans, attacker)
	}
	testpeer.Step(t, vw, "the ban leaves the viewer's page", 5*time.Second,
		chromedp.Poll[chromedp.Void]("!"+fmt.Sprintf(banCell, attacker.String())))

	// The source passes: its OPTIONS and REGISTER reach Kamailio through
	// the guard and get Kamailio's answers.
	before := k.Count("rx method=OPTIONS", "xauthip="+attacker.String()+" ")
	code, answer, err := testpeer.SendAnswer(attacker, g.SIP(), testpeer.Request{}, 2*time.Second)
	if err != nil || code != http.StatusOK || !strings.Contains(answer, "Keepalive") {
		t.Errorf("OPTIONS from %s after the unban: %d %v; want Kamailio's 200 Keepalive\n%s", attacker, code, err, answer)
	}
	if n := k.WaitCount(2*time.Second, before+1, "rx method=OPTIONS", "xauthip="+attacker.String()+" "); n != before+1 {
		t.Errorf("kamailio saw %d OPTIONS from %s after the unban, want 1", n-before, attacker)
	}
	testpeer.SippOK(t, testpeer.SippOptions{Scenario: testpeer.ScenarioRegister, Local: attacker, Remote: g.SIP(),
		User: "1001", Password: users["1001"]})
	requireRegisteredVia(t, k, "1001", g)

	// The attacker's markup never became part of either page.
	for _, who := range []struct {
		name    string
		ctx     context.Context
		dialogs *testpeer.Dialogs
	}{{"operator", op, opDialogs}, {"viewer", vw, vwDialogs}} {
		if n := testpeer.Eval[int](t, who.ctx, injected); n != 0 {
			t.Errorf("%s page: %d elements injected", who.name, n)
		}
		if v := testpeer.Eval[[]string](t, who.ctx, `window.__csp || []`); len(v) != 0 {
			t.Errorf("%s page: Content-Security-Policy violations %q", who.name, v)
		}
		for _, d := range who.dialogs.Seen() {
			if d.Type != page.DialogTypeConfirm {
				t.Errorf("%s page opened a %s dialog: %q", who.name, d.Type, d.Message)
			}
		}
	}
}
