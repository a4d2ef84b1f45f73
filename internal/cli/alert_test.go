package cli

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

	"github.com/tollguard/tollguard/internal/enforce/alert"
)

func TestAlertTest(t *testing.T) {
	var mu sync.Mutex
	var got []alert.WebhookPayload
	var sigs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p alert.WebhookPayload
		json.Unmarshal(body, &p)
		mu.Lock()
		got = append(got, p)
		sigs = append(sigs, r.Header.Get(alert.HeaderSignature))
		mu.Unlock()
	}))
	defer srv.Close()
	cfgFile := filepath.Join(t.TempDir(), "tollguard.yaml")
	os.WriteFile(cfgFile, []byte("alerts:\n  channels:\n    - {name: siem, type: webhook, url: \""+srv.URL+"\", secret: k}\n"), 0o600)

	e, out, errb := testEnv(t)
	if code := run(context.Background(), e, []string{"alert", "test", "siem", "-c", cfgFile}, nil); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if !strings.Contains(out.String(), "sent a test alert to siem (webhook)") {
		t.Errorf("output %q", out)
	}
	if len(got) != 1 || got[0].Kind != alert.KindTest || got[0].Channel != "siem" || !strings.HasPrefix(sigs[0], "sha256=") {
		t.Errorf("received %+v %v", got, sigs)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown channel", []string{"alert", "test", "pager", "-c", cfgFile}, ExitError, `no alert channel named "pager" (configured: [siem])`},
		{"no channel", []string{"alert", "test"}, ExitUsage, "want: alert test CHANNEL"},
		{"other subcommand", []string{"alert", "send", "x"}, ExitUsage, "want: alert test CHANNEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, errb := testEnv(t)
			if code := run(context.Background(), e, tc.args, nil); code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb, tc.code, tc.want)
			}
		})
	}
}

// A receiver that refuses makes the command fail with the reason.
func TestAlertTestFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, `{"errcode":300001,"errmsg":"token is not exist"}`)
	}))
	defer srv.Close()
	cfgFile := filepath.Join(t.TempDir(), "tollguard.yaml")
	os.WriteFile(cfgFile, []byte("alerts:\n  channels:\n    - {name: ops, type: dingtalk, url: \""+srv.URL+"\", access_token: SECRETTOKEN}\n"), 0o600)
	e, _, errb := testEnv(t)
	if code := run(context.Background(), e, []string{"alert", "test", "ops", "-c", cfgFile}, nil); code != ExitError {
		t.Fatalf("exit %d", code)
	}
	if s := errb.String(); !strings.Contains(s, "errcode 300001") || strings.Contains(s, "SECRETTOKEN") {
		t.Errorf("stderr %q", s)
	}
}
