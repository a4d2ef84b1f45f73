package daemon

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/users"
	"github.com/tollguard/tollguard/internal/web"
)

// TestConsoleOnAdminListener starts the daemon without a SIP listener: the
// console answers on admin.listen under /ui/, a user added to the data dir
// (as `tollguard user add` does) can log in while the daemon runs, and the
// daemon shuts down cleanly with a live stream open.
func TestConsoleOnAdminListener(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.SIP.Listen = nil
	cfg.SIP.Upstream = ""
	cfg.Admin.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(t.Context())
	g, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	select {
	case <-g.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	base := "http://" + g.AdminAddr().String()
	res, err := http.Get(base + "/ui/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "static/app.js") || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Fatalf("GET /ui/: %s %q", res.Status, res.Header.Get("Content-Security-Policy"))
	}

	u, err := users.Open(dir).Add("alice", users.Operator, "correct horse battery", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	code, _ := users.Code(u.TOTP, time.Now())
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	lb, _ := json.Marshal(web.LoginBody{Name: "alice", Password: "correct horse battery", Code: code})
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(string(lb)))
	req.Header.Set("Origin", base)
	res, err = hc.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("login to the running daemon: %v %v", res.Status, err)
	}
	res.Body.Close()
	res, err = hc.Get(base + "/ui/api/v1/bans")
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("bans through the console: %v %v", res.Status, err)
	}
	res.Body.Close()
	live, err := hc.Get(base + "/ui/live")
	if err != nil || live.StatusCode != http.StatusOK {
		t.Fatalf("live stream: %v", err)
	}
	defer live.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the daemon did not stop with a live stream open")
	}
}
