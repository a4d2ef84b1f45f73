package testpeer

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's chromium, which scripts/install-test-deps.sh
// installs.
const ChromiumPath = "/usr/bin/chromium"

// Chromium starts headless Chromium with a fresh profile, English as its
// language and no background traffic of its own, and returns a context for
// one tab with a window of width×height. The browser stops when the test
// ends. Without Chromium the test is skipped, except under CI, where it
// fails (RequireTool).
//
// A tab with its own cookies (a second user logged in at the same time) is
// chromedp.NewContext(ctx, chromedp.WithNewBrowserContext()).
func Chromium(t testing.TB, width, height int) context.Context {
	t.Helper()
	path := RequireTool(t, ChromiumPath)
	actx, acancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testpeer: starting chromium: %v", err)
	}
	return ctx
}

// Step runs actions in the tab of ctx within d, and fails the test with
// what it was doing when they return an error or time out.
func Step(t testing.TB, ctx context.Context, what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates the JavaScript expression js in the tab of ctx, awaiting
// it when it is a promise, and returns its value; it fails the test after
// 10 s or on an error.
func Eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating %q: %v", js, err)
	}
	return v
}

// ScreenshotDir is where a test run writes its screenshots: the directory
// named by TOLLGUARD_SCREENSHOTS when set (CI keeps it as an artifact),
// else a new temporary directory that outlives the test so it can be
// looked at.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("TOLLGUARD_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "tollguard-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Screenshot writes a full-page PNG of the tab of ctx to dir/name.png.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Dialog is one JavaScript dialog (alert, confirm, prompt, beforeunload)
// that a page opened.
type Dialog struct {
	Type    page.DialogType
	Message string
}

// Dialogs records the dialogs a tab opens and answers them as a user
// would: confirm dialogs are accepted, every other kind dismissed, so a
// dialog never blocks the page. A page that may run only its own script
// opens nothing but its confirmations; an alert is a sign that injected
// markup ran.
type Dialogs struct {
	mu   sync.Mutex
	seen []Dialog
}

// WatchDialogs starts answering and recording the dialogs of the tab of
// ctx until the test ends.
func WatchDialogs(t testing.TB, ctx context.Context) *Dialogs {
	t.Helper()
	d := &Dialogs{}
	lctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	opening := chromedp.Events(lctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range opening {
			if err != nil {
				return
			}
			d.mu.Lock()
			d.seen = append(d.seen, Dialog{Type: ev.Type, Message: ev.Message})
			d.mu.Unlock()
			// Answered from another goroutine than the one reading the
			// events, as chromedp requires.
			accept := ev.Type == page.DialogTypeConfirm
			go func() {
				_ = chromedp.Do(lctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
					_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept})
					return err
				}))
			}()
		}
	}()
	return d
}

// Seen returns the dialogs opened so far, oldest first.
func (d *Dialogs) Seen() []Dialog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Dialog(nil), d.seen...)
}
