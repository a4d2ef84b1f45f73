package api_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

// storeHarness is a harness whose event routes read a real SQLite store
// holding a small attack: failures on 13812345678 from 203.0.113.7, then a
// registration and a call abroad from it.
func storeHarness(t *testing.T) *harness {
	t.Helper()
	return storeHarnessIn(t, t.TempDir(), config.Default().Store)
}

// storeHarnessIn is storeHarness with the store in dataDir, configured by cfg.
func storeHarnessIn(t *testing.T, dataDir string, cfg config.Store) *harness {
	t.Helper()
	h := newHarness(t)
	ctx := context.Background()
	st, err := store.Open(ctx, cfg, dataDir, store.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src := netip.MustParseAddrPort("203.0.113.7:5060")
	for i := range 5 {
		st.Record(&event.AuthFailure{Meta: event.Meta{Time: t0.Add(-time.Hour + time.Duration(i)*time.Second), Source: src},
			SIP: event.SIP{Method: "REGISTER", ToUser: "13812345678", UserAgent: "friendly-scanner"}, Account: "13812345678", Code: 403})
	}
	st.Record(&event.Register{Meta: event.Meta{Time: t0.Add(-50 * time.Minute), Source: src}, Account: "13812345678"})
	st.Record(&event.CallAnswered{Meta: event.Meta{Time: t0.Add(-49 * time.Minute), Source: src}, Account: "13812345678", Destination: "00972599123456"})
	st.Record(&event.Register{Meta: event.Meta{Time: t0.Add(-48 * time.Hour), Source: netip.MustParseAddrPort("192.0.2.5:5060")}, Account: "1002"})
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	h.srv.MountEvents(st)
	return h
}

func TestGetEvents(t *testing.T) {
	h := storeHarness(t)
	tests := []struct {
		name  string
		query string
		code  int
		seqs  []int64
	}{
		{"all", "", 200, []int64{7, 6, 5, 4, 3, 2, 1, 8}},
		{"by ip", "?ip=203.0.113.7&kind=register,call_answered", 200, []int64{7, 6}},
		{"by account", "?account=1002", 200, []int64{8}},
		{"since", "?since=24h&kind=auth_failure&limit=2", 200, []int64{5, 4}},
		{"until rfc3339", "?until=2026-02-28T12:00:01Z", 200, []int64{8}},
		{"bad ip", "?ip=nope", 400, nil},
		{"bad kind", "?kind=bogus", 400, nil},
		{"bad since", "?since=yesterday", 400, nil},
		{"bad limit", "?limit=-1", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := h.do("GET", "/api/v1/events"+tt.query, h.bearer(), "")
			if w.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.code, w.Body)
			}
			if tt.code != 200 {
				return
			}
			var rep api.EventsReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, r := range rep.Records {
				got = append(got, r.Seq)
			}
			if !slicesEqual(got, tt.seqs) {
				t.Errorf("seqs %v, want %v", got, tt.seqs)
			}
		})
	}
	if w := h.do("GET", "/api/v1/events", "", ""); w.Code != 401 {
		t.Errorf("events without a token: %d", w.Code)
	}
}

func slicesEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEventsMaskedUnlessUnmaskedAndAudited(t *testing.T) {
	h := storeHarness(t)
	w := h.do("GET", "/api/v1/events?kind=call_answered", h.bearer(), "")
	body := w.Body.String()
	if w.Code != 200 || strings.Contains(body, "13812345678") || strings.Contains(body, "00972599123456") || !strings.Contains(body, "138****5678") {
		t.Fatalf("masked answer shows numbers or lacks the mask: %s", body)
	}
	if len(h.audit) != 0 {
		t.Fatalf("a masked read was audited: %+v", h.audit)
	}
	w = h.do("GET", "/api/v1/events?kind=call_answered&unmask=true", h.bearer(), "")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "00972599123456") {
		t.Fatalf("unmasked answer: %d %s", w.Code, w.Body)
	}
	if len(h.audit) != 1 || h.audit[0].Action != "unmask" || h.audit[0].Actor != "token@127.0.0.5" || h.audit[0].Source.Addr().String() != "127.0.0.5" {
		t.Fatalf("unmask not audited: %+v", h.audit)
	}
}

func TestInvestigate(t *testing.T) {
	h := storeHarness(t)
	w := h.do("GET", "/api/v1/investigate?since=24h", h.bearer(), "")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var rep api.InvestigateReply
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	c := rep.Report.Compromised
	if !rep.Masked || len(c) != 1 || c[0].Account != "138****5678" || c[0].IP.String() != "203.0.113.7" {
		t.Errorf("compromised = %+v (masked %v)", c, rep.Masked)
	}
	if rep.Report.Events != 7 {
		t.Errorf("the 48h-old event was included: %d events", rep.Report.Events)
	}
}

func TestBackupRoute(t *testing.T) {
	data := t.TempDir()
	h := storeHarnessIn(t, data, config.Default().Store)
	dir := filepath.Join(data, store.BackupDirName)
	w := h.do("POST", "/api/v1/backup", h.bearer(), `{"name":"copy.db"}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var rep api.BackupReply
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || rep.Path != filepath.Join(dir, "copy.db") {
		t.Fatalf("reply %s: %v", w.Body, err)
	}
	if fi, err := os.Stat(rep.Path); err != nil || fi.Size() == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if n := len(h.audit); n < 1 || h.audit[n-1].Action != "backup" || h.audit[n-1].Target != "copy.db" {
		t.Errorf("backup not audited: %+v", h.audit)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}

	// No-dir is a store whose backup_dir cannot be created.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default().Store
	cfg.BackupDir = filepath.Join(blocker, "backups")
	noDir := storeHarnessIn(t, t.TempDir(), cfg)

	// Whatever the reason, one answer: the client learns nothing of which
	// paths exist.
	cases := []struct {
		name string
		h    *harness
		body string
	}{
		{"exists", h, `{"name":"copy.db"}`},
		{"symlink planted", h, `{"name":"link.db"}`},
		{"traversal", h, `{"name":"../x.db"}`},
		{"traversal after a directory", h, `{"name":"data/../x.db"}`},
		{"absolute outside", h, `{"name":"/tmp/x.db"}`},
		{"absolute inside", h, `{"name":"` + filepath.Join(dir, "y.db") + `"}`},
		{"NUL byte", h, `{"name":"x\u0000.db"}`},
		{"bidi", h, `{"name":"x\u202e.db"}`},
		{"empty", h, `{"name":""}`},
		{"no such dir", noDir, `{"name":"x.db"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := c.h.do("POST", "/api/v1/backup", c.h.bearer(), c.body)
			var e struct{ Error string }
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if w.Code != 400 || !strings.HasPrefix(e.Error, "backup refused: name must be a new file name in the backup directory") {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if strings.Contains(e.Error, "/") {
				t.Errorf("the answer names a path: %s", e.Error)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(data, "x.db")); err == nil {
		t.Error("x.db written outside the backup directory")
	}
	if w := h.do("POST", "/api/v1/backup", h.bearer(), `{"path":"/tmp/x.db"}`); w.Code != 400 {
		t.Errorf("the old path field: %d %s", w.Code, w.Body)
	}
}
