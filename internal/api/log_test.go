package api_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/store"
)

// refusingStore refuses every backup, as the store does a taken name.
type refusingStore struct{ api.EventStore }

func (refusingStore) Backup(context.Context, string) (string, error) {
	return "", fmt.Errorf("%w: taken", store.ErrBackupRefused)
}

// Client text in the log is quoted once, by the handler, and escaped:
// not "\"…\"".
func TestLogQuotesClientTextOnce(t *testing.T) {
	var logs bytes.Buffer
	dir := t.TempDir()
	srv, err := api.New(api.Options{Listen: "127.0.0.1:0", DataDir: dir, Now: func() time.Time { return t0 },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountEvents(refusingStore{})
	tok, _, err := api.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	do := func(path, auth, body string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Authorization", auth)
		srv.Handler().ServeHTTP(httptest.NewRecorder(), r)
	}
	do("/api/v1/backup", "Bearer "+string(tok), `{"name":"x\u001b[2J y"}`)
	do("/api/v1/no%20such", "Bearer wrong", "")
	for _, want := range []string{`name="x\x1b[2J y"`, `path="/api/v1/no such"`, "method=POST"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	if strings.Contains(logs.String(), `\"`) {
		t.Errorf("client text quoted twice:\n%s", logs.String())
	}
}
