package api_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
)

// MountPublic paths skip the token; everything else still needs it, and
// a request marked WithOperator (the console, in-process) is served
// without a token and audited under the user's name.
func TestMountPublicAndWithOperator(t *testing.T) {
	h := newHarness(t)
	h.srv.MountPublic("/ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("console"))
	}))
	if w := h.do("GET", "/ui/anything", "", ""); w.Code != http.StatusOK || w.Body.String() != "console" {
		t.Errorf("public path: %d %q", w.Code, w.Body)
	}
	for _, p := range []string{"/api/v1/bans", "/uix", "/ui"} {
		if w := h.do("GET", p, "", ""); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without token: %d, want 401", p, w.Code)
		}
	}
	r := httptest.NewRequest("POST", "/api/v1/bans", strings.NewReader(`{"ip":"203.0.113.9"}`))
	r.RemoteAddr = "127.0.0.5:40000"
	r = r.WithContext(api.WithOperator(r.Context(), "alice"))
	w := httptest.NewRecorder()
	h.srv.Handler().ServeHTTP(w, r)
	if w.Code != http.StatusCreated {
		t.Fatalf("console ban: %d %s", w.Code, w.Body)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.audit) != 1 || h.audit[0].Actor != "alice@127.0.0.5" || h.audit[0].Action != "ban" {
		t.Errorf("audit %+v, want one ban by alice@127.0.0.5", h.audit)
	}
	if got := h.bans.banReqs[0].Actor; got != "alice@127.0.0.5" {
		t.Errorf("ban actor %q", got)
	}
}

func TestWriteEventsCSVDefuses(t *testing.T) {
	var b bytes.Buffer
	err := api.WriteEventsCSV(&b, []api.EventRecord{{Seq: 1, Time: t0.Add(time.Second), Kind: "auth_failure",
		UserAgent: "=cmd|' /C calc'!A0", Account: "@SUM(1+1)", CallID: "-2+3", From: "+8613812345678", Code: 403}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`'=cmd|' /C calc'!A0`, `'@SUM(1+1)`, `'-2+3`, `+8613812345678`, "seq,time,kind"} {
		if !strings.Contains(out, want) {
			t.Errorf("CSV lacks %q:\n%s", want, out)
		}
	}
}
