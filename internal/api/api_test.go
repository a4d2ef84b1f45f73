package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/event"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// harness is a Server with a fake BanService and a recorded audit log.
type harness struct {
	srv   *api.Server
	reg   *prometheus.Registry
	bans  *fakeBans
	token string
	mu    sync.Mutex
	audit []event.Admin
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{reg: prometheus.NewRegistry(), bans: newFakeBans(t0)}
	srv, err := api.New(api.Options{
		Listen:   "127.0.0.1:0",
		DataDir:  t.TempDir(),
		Registry: h.reg,
		Bans:     h.bans,
		Now:      func() time.Time { return t0 },
		Audit: func(_ context.Context, a event.Admin) {
			h.mu.Lock()
			h.audit = append(h.audit, a)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(srv.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	h.srv, h.token = srv, strings.TrimSpace(string(data))
	return h
}

// do sends one request from 127.0.0.5 with the given Authorization header.
func (h *harness) do(method, target, auth, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.RemoteAddr = "127.0.0.5:40000"
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, r)
	return w
}

func (h *harness) bearer() string { return "Bearer " + h.token }

// errorOf decodes {"error": ...}, failing if the body has another shape.
func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want JSON", ct)
	}
	var eb api.ErrorBody
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error == "" {
		t.Fatalf("body is not {\"error\": ...}: %v", err)
	}
	return eb.Error
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name   string
		method string
		path   string
		auth   string
		want   int
	}{
		{"healthz open", "GET", "/healthz", "", 200},
		{"metrics open", "GET", "/metrics", "", 200},
		{"no token", "GET", "/api/v1/bans", "", 401},
		{"wrong token", "GET", "/api/v1/bans", "Bearer " + strings.Repeat("0", 64), 401},
		{"token prefix only", "GET", "/api/v1/bans", "Bearer " + h.token[:32], 401},
		{"basic scheme", "GET", "/api/v1/bans", "Basic " + h.token, 401},
		{"right token", "GET", "/api/v1/bans", h.bearer(), 200},
		{"scheme case-insensitive", "GET", "/api/v1/bans", "bearer " + h.token, 200},
		{"unknown path without token", "GET", "/api/v1/nothing", "", 401},
		{"unknown path with token", "GET", "/api/v1/nothing", h.bearer(), 404},
		{"mutation without token", "DELETE", "/api/v1/bans/192.0.2.1", "", 401},
	}
	failures := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := h.do(c.method, c.path, c.auth, "")
			if w.Code != c.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, c.want, w.Body)
			}
			if c.want == 401 {
				failures++
				if msg := errorOf(t, w); !strings.Contains(msg, "token") {
					t.Errorf("error %q does not mention the token", msg)
				}
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if got := counterValue(t, h.reg, "tollguard_api_auth_failures_total"); got != float64(failures) {
		t.Errorf("auth failures metric = %v, want %d", got, failures)
	}
	if len(h.audit) != 0 {
		t.Errorf("refused or read-only requests were audited: %+v", h.audit)
	}
	if len(h.bans.unbanArg) != 0 {
		t.Errorf("unauthenticated DELETE reached the service: %v", h.bans.unbanArg)
	}
}

// counterValue returns the value of an unlabelled counter.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func TestRequestMetricLabels(t *testing.T) {
	h := newHarness(t)
	h.do("GET", "/api/v1/bans", h.bearer(), "")
	h.do("GET", "/api/v1/bans", "", "")
	h.do("GET", "/203.0.113.9/secret", h.bearer(), "")
	want := `
# HELP tollguard_api_requests_total Admin API requests by route pattern and status code.
# TYPE tollguard_api_requests_total counter
tollguard_api_requests_total{code="200",route="GET /api/v1/bans"} 1
tollguard_api_requests_total{code="401",route="GET /api/v1/bans"} 1
tollguard_api_requests_total{code="404",route="unmatched"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "tollguard_api_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestMountedRouteNeedsTokenAndIsAudited(t *testing.T) {
	h := newHarness(t)
	h.srv.Mount("POST /api/v1/lockdown", func(w http.ResponseWriter, r *http.Request) {
		api.Annotate(r, "lockdown", "all", "on")
		api.WriteJSON(w, http.StatusOK, map[string]bool{"on": true})
	})
	h.srv.Mount("PUT /api/v1/plain", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusConflict, "busy")
	})
	if w := h.do("POST", "/api/v1/lockdown", "", ""); w.Code != 401 {
		t.Fatalf("mounted route without token: %d", w.Code)
	}
	if w := h.do("POST", "/api/v1/lockdown", h.bearer(), ""); w.Code != 200 {
		t.Fatalf("mounted route with token: %d %s", w.Code, w.Body)
	}
	h.do("PUT", "/api/v1/plain", h.bearer(), "")
	want := []event.Admin{
		{Actor: "token@127.0.0.5", Action: "lockdown", Target: "all", Detail: "on"},
		{Actor: "token@127.0.0.5", Action: "PUT /api/v1/plain", Detail: "status=Conflict"},
	}
	if len(h.audit) != len(want) {
		t.Fatalf("audit = %+v, want %d records", h.audit, len(want))
	}
	for i, a := range h.audit {
		w := want[i]
		if a.Actor != w.Actor || a.Action != w.Action || a.Target != w.Target || a.Detail != w.Detail {
			t.Errorf("audit[%d] = %+v, want %+v", i, a, w)
		}
		if !a.Time.Equal(t0) || a.Source.String() != "127.0.0.5:40000" || a.Kind() != event.KindAdmin {
			t.Errorf("audit[%d] meta = %+v", i, a.Meta)
		}
	}
}

func TestRunListensAndShutsDown(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Run(ctx) }()
	<-h.srv.Ready()
	resp, err := http.Get("http://" + h.srv.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("healthz = %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}
	if _, err := http.Get("http://" + h.srv.Addr().String() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
	if err := h.srv.Run(context.Background()); err == nil {
		t.Error("second Run succeeded")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		o    api.Options
	}{
		{"no listen", api.Options{DataDir: t.TempDir()}},
		{"no data dir", api.Options{Listen: "127.0.0.1:0"}},
		{"data dir is a file", api.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(writeFile(t, "x"), "sub")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := api.New(c.o); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
