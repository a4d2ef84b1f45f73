package testpeer

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Helpers for tollguard's own console (internal/web) in a tab started by
// Chromium: they know its element ids and its session contract.

// ConsoleLogin fills and submits the login form of tollguard's console
// (internal/web) in the tab of ctx, which must show it.
func ConsoleLogin(t testing.TB, ctx context.Context, name, password, code string) {
	t.Helper()
	Step(t, ctx, "filling the login form", 10*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SetValue(chromedp.CSS("#login-name"), name),
		chromedp.SetValue(chromedp.CSS("#login-password"), password),
		chromedp.SetValue(chromedp.CSS("#login-code"), code),
		chromedp.Click(chromedp.CSS("#login-submit")),
	)
}

// ConsoleSetLanguage picks lang ("en", "zh-CN") in the console's language
// switch, as a user would; the page redraws in it at once.
func ConsoleSetLanguage(t testing.TB, ctx context.Context, lang string) {
	t.Helper()
	Eval[bool](t, ctx, fmt.Sprintf(`(s => { s.value = %q; s.dispatchEvent(new Event("change")); return true })(document.getElementById("app-lang"))`, lang))
}

// ConsoleCall sends method path (relative to /ui/, such as
// "api/v1/bans/192.0.2.1") from the logged-in page with the session's CSRF
// token and the page's Origin, and a JSON body when body is not empty, as
// a user with the browser's developer tools could; it returns the status.
func ConsoleCall(t testing.TB, ctx context.Context, method, path, body string) int {
	t.Helper()
	opts := fmt.Sprintf(`{method: %q, headers: {"X-CSRF-Token": s.csrf}}`, method)
	if body != "" {
		b, _ := json.Marshal(body)
		opts = fmt.Sprintf(`{method: %q, headers: {"X-CSRF-Token": s.csrf, "Content-Type": "application/json"}, body: %s}`, method, b)
	}
	return Eval[int](t, ctx, fmt.Sprintf(`fetch("session").then(r => r.json()).then(s => fetch(%q, %s)).then(r => r.status)`, path, opts))
}
