package intel

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

const bouncerKey = "0123456789abcdef-bouncer"

type exportRig struct {
	set *decision.Set
	now time.Time
	exp *Export
	ts  *httptest.Server
	log bytes.Buffer
}

func newExportRig(t *testing.T, o ExportOptions) *exportRig {
	t.Helper()
	r := &exportRig{set: decision.NewSet(), now: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	o.Bans = r.set.List
	o.Now = func() time.Time { return r.now }
	o.Logger = slog.New(slog.NewTextHandler(&r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if o.APIKeys == nil {
		o.APIKeys = []string{bouncerKey}
	}
	e, err := NewExport(o)
	if err != nil {
		t.Fatal(err)
	}
	r.exp = e
	r.ts = httptest.NewServer(e.Handler())
	t.Cleanup(r.ts.Close)
	return r
}

func (r *exportRig) ban(scope decision.Scope, target, account, origin, rule string, d time.Duration) {
	r.set.Apply(decision.Decision{Type: decision.TypeBan, Scope: scope, Prefix: netip.MustParsePrefix(target),
		Account: account, Origin: origin, Rule: rule, At: r.now, Until: r.now.Add(d)})
}

func (r *exportRig) get(t *testing.T, method, path, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *exportRig) stream(t *testing.T, query string) csStream {
	t.Helper()
	code, body := r.get(t, "GET", StreamPath+query, bouncerKey)
	if code != http.StatusOK {
		t.Fatalf("stream%s: %d %s", query, code, body)
	}
	var s csStream
	if err := json.Unmarshal([]byte(body), &s); err != nil || s.New == nil || s.Deleted == nil {
		t.Fatalf("stream%s: %v in %s (both arrays must be present)", query, err, body)
	}
	return s
}

func values(ds []csDecision) string {
	var v []string
	for _, d := range ds {
		v = append(v, d.Value)
	}
	return strings.Join(v, ",")
}

// fill bans one of each kind; only the first two are shareable by default.
func (r *exportRig) fill() {
	r.ban(decision.ScopeIP, "192.0.2.1/32", "", "engine", "jail", 3*time.Hour+59*time.Minute+58*time.Second)
	r.ban(decision.ScopePrefix, "2001:db8:1::/64", "", "engine", "enumeration", time.Hour)
	r.ban(decision.ScopeIP, "10.0.0.7/32", "", "engine", "jail", time.Hour)             // internal
	r.ban(decision.ScopeIP, "192.0.2.2/32", "", "intel:apiban", "intel", time.Hour)     // a feed's
	r.ban(decision.ScopeIPAccount, "192.0.2.3/32", "1001", "engine", "jail", time.Hour) // account
	r.ban(decision.ScopeAccount, "0.0.0.0/0", "1002", "engine", "anomaly", time.Hour)   // account
	r.ban(decision.ScopeIP, "192.0.2.4/32", "", "engine", "flood", -time.Second)        // expired
}

func TestPlainAndJSONFeeds(t *testing.T) {
	r := newExportRig(t, ExportOptions{})
	r.fill()
	code, body := r.get(t, "GET", "/bans.txt", "")
	if code != 200 || body != "192.0.2.1\n2001:db8:1::/64\n" {
		t.Fatalf("bans.txt = %d %q", code, body)
	}
	code, body = r.get(t, "GET", "/bans.json", "")
	var doc struct {
		Bans []jsonBan `json:"bans"`
	}
	if err := json.Unmarshal([]byte(body), &doc); code != 200 || err != nil || len(doc.Bans) != 2 ||
		doc.Bans[0].Value != "192.0.2.1" || doc.Bans[0].Rule != "jail" || doc.Bans[1].Scope != "prefix" {
		t.Fatalf("bans.json = %d %s (%v)", code, body, err)
	}
	if strings.Contains(body, "1001") || strings.Contains(body, "reason") {
		t.Fatalf("bans.json shares accounts or reasons: %s", body)
	}
}

func TestExportOptions(t *testing.T) {
	cases := []struct {
		name string
		o    ExportOptions
		want string
	}{
		{"internal included", ExportOptions{IncludeInternal: true}, "10.0.0.7\n192.0.2.1\n2001:db8:1::/64\n"},
		{"feeds included", ExportOptions{IncludeFeeds: true}, "192.0.2.1\n192.0.2.2\n2001:db8:1::/64\n"},
		{"proven only", ExportOptions{Proven: func(d decision.Decision) bool { return d.Rule == "jail" }}, "192.0.2.1\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newExportRig(t, c.o)
			r.fill()
			if _, body := r.get(t, "GET", "/bans.txt", ""); body != c.want {
				t.Fatalf("bans.txt = %q, want %q", body, c.want)
			}
		})
	}
}

func TestStreamKeys(t *testing.T) {
	r := newExportRig(t, ExportOptions{})
	for _, key := range []string{"", "wrong-key-but-long-enough", bouncerKey + "x"} {
		code, body := r.get(t, "GET", StreamPath+"?startup=true", key)
		if code != http.StatusForbidden || body != `{"message":"access forbidden"}` {
			t.Fatalf("key %q: %d %s", key, code, body)
		}
	}
	if strings.Contains(r.log.String(), "wrong-key") || strings.Contains(r.log.String(), bouncerKey) {
		t.Fatalf("a key reached the log: %s", r.log.String())
	}
	if _, err := NewExport(ExportOptions{Bans: r.set.List, APIKeys: []string{"short"}}); err == nil {
		t.Fatal("a short bouncer key was accepted")
	}
}

func TestStreamStartupAndDeltas(t *testing.T) {
	r := newExportRig(t, ExportOptions{})
	r.fill()
	s := r.stream(t, "?startup=true")
	if values(s.New) != "192.0.2.1,2001:db8:1::/64" || len(s.Deleted) != 0 {
		t.Fatalf("startup = %+v", s)
	}
	// The exact decision a bouncer parses.
	_, raw := r.get(t, "GET", StreamPath+"?startup=true", bouncerKey)
	want := `{"id":` + jsonInt(decisionID(mustBan(r, "192.0.2.1"))) + `,"origin":"tollguard","type":"ban","scope":"Ip","value":"192.0.2.1","duration":"3h59m58s","scenario":"tollguard/jail"}`
	if !strings.Contains(raw, want) {
		t.Fatalf("stream body %s\nlacks %s", raw, want)
	}
	if !strings.Contains(raw, `"scope":"Range","value":"2001:db8:1::/64","duration":"1h0m0s","scenario":"tollguard/enumeration"`) {
		t.Fatalf("range decision missing: %s", raw)
	}

	// Nothing changed: an empty delta, with both arrays.
	if s := r.stream(t, ""); len(s.New) != 0 || len(s.Deleted) != 0 {
		t.Fatalf("empty delta = %+v", s)
	}
	// A connectivity check (HEAD) does not consume the next delta.
	r.ban(decision.ScopeIP, "192.0.2.9/32", "", "engine", "probe", time.Hour)
	if code, body := r.get(t, "HEAD", StreamPath, bouncerKey); code != 200 || body != "" {
		t.Fatalf("HEAD = %d %q", code, body)
	}
	// A new ban, a lifted one and an expired one.
	r.set.Remove(decision.Key{Scope: decision.ScopePrefix, Prefix: netip.MustParsePrefix("2001:db8:1::/64")}, false)
	s = r.stream(t, "?startup=false")
	if values(s.New) != "192.0.2.9" || values(s.Deleted) != "2001:db8:1::/64" {
		t.Fatalf("delta = %+v", s)
	}
	r.now = r.now.Add(2 * time.Hour) // 192.0.2.9 expires; 192.0.2.1 is still banned
	s = r.stream(t, "")
	if len(s.New) != 0 || values(s.Deleted) != "192.0.2.9" || s.Deleted[0].Duration != "-1h0m0s" {
		t.Fatalf("after expiry = %+v", s)
	}
	// A ban without expiry, then lifted: deleted with a zero duration.
	r.set.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("192.0.2.5/32"),
		Origin: "admin", Rule: "admin", At: r.now})
	if s := r.stream(t, ""); values(s.New) != "192.0.2.5" || s.New[0].Duration != "8760h0m0s" {
		t.Fatalf("permanent ban = %+v", s)
	}
	r.set.Remove(decision.Key{Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("192.0.2.5/32")}, true)
	if s := r.stream(t, ""); values(s.Deleted) != "192.0.2.5" || s.Deleted[0].Duration != "0s" {
		t.Fatalf("lifted permanent ban = %+v", s)
	}
	// Each bouncer key has its own cursor.
	r2 := newExportRig(t, ExportOptions{APIKeys: []string{bouncerKey, "another-bouncer-key-0001"}})
	r2.fill()
	r2.stream(t, "?startup=true")
	code, body := r2.get(t, "GET", StreamPath, "another-bouncer-key-0001")
	if code != 200 || !strings.Contains(body, `"value":"192.0.2.1"`) {
		t.Fatalf("second bouncer's first delta = %d %s", code, body)
	}
}

func TestStreamFilters(t *testing.T) {
	r := newExportRig(t, ExportOptions{})
	r.fill()
	cases := []struct{ query, want string }{
		{"?startup=true&scopes=ip", "192.0.2.1"},
		{"?startup=true&scopes=range", "2001:db8:1::/64"},
		{"?startup=true&scopes=ip,range&origins=crowdsec", ""},
		{"?startup=true&origins=tollguard&scenarios_containing=enum", "2001:db8:1::/64"},
		{"?startup=true&scenarios_not_containing=jail", "2001:db8:1::/64"},
	}
	for _, c := range cases {
		if got := values(r.stream(t, c.query).New); got != c.want {
			t.Errorf("%s: %q, want %q", c.query, got, c.want)
		}
	}
	if code, _ := r.get(t, "GET", StreamPath+"?startup=maybe", bouncerKey); code != http.StatusBadRequest {
		t.Errorf("startup=maybe: %d", code)
	}
}

// TestBouncerRequestReplay replays the requests crowdsec-firewall-bouncer
// makes through go-cs-bouncer's StreamBouncer (its apiclient encodes
// DecisionsStreamOpts with go-querystring: startup is omitted when false,
// scopes and origins only when configured): one startup pull, then deltas
// every update_frequency, key in X-Api-Key, its own User-Agent.
func TestBouncerRequestReplay(t *testing.T) {
	r := newExportRig(t, ExportOptions{})
	r.ban(decision.ScopeIP, "192.0.2.1/32", "", "engine", "jail", time.Hour)
	do := func(uri string) csStream {
		req, _ := http.NewRequest("GET", r.ts.URL+uri, nil)
		req.Header.Set("X-Api-Key", bouncerKey)
		req.Header.Set("User-Agent", "crowdsec-firewall-bouncer/v0.0.25-debian-pragmatic-amd64-")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var s csStream
		if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", uri, resp.StatusCode, err)
		}
		return s
	}
	if s := do("/v1/decisions/stream?startup=true"); values(s.New) != "192.0.2.1" {
		t.Fatalf("startup: %+v", s)
	}
	r.ban(decision.ScopeIP, "192.0.2.2/32", "", "engine", "jail", time.Hour)
	if s := do("/v1/decisions/stream?"); values(s.New) != "192.0.2.2" {
		t.Fatalf("first delta: %+v", s)
	}
	r.ban(decision.ScopePrefix, "203.0.113.0/24", "", "engine", "distributed", time.Hour)
	if s := do("/v1/decisions/stream?scopes=ip%2Crange"); values(s.New) != "203.0.113.0/24" || s.New[0].Scope != "Range" {
		t.Fatalf("delta with scopes: %+v", s)
	}
}

func mustBan(r *exportRig, addr string) decision.Decision {
	d, _ := r.set.Banned(netip.MustParseAddr(addr), r.now)
	return d
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestLiveMode(t *testing.T) {
	r := newExportRig(t, ExportOptions{})
	r.fill()
	r.ban(decision.ScopePrefix, "203.0.113.0/24", "", "engine", "distributed", time.Hour)
	cases := []struct{ query, want string }{
		{"?ip=192.0.2.1", "192.0.2.1"},
		{"?ip=::ffff:192.0.2.1", "192.0.2.1"},
		{"?ip=192.0.2.200", ""},
		{"?ip=203.0.113.5", "203.0.113.0/24"},
		{"?ip=203.0.113.5&contains=false", ""},
		{"?ip=2001:db8:1::77", "2001:db8:1::/64"},
		{"?ip=10.0.0.7", ""}, // internal: not shared
		{"?range=203.0.113.0/24", "203.0.113.0/24"},
		{"?range=203.0.113.128/25", "203.0.113.0/24"},
		{"?range=203.0.0.0/16&contains=false", "203.0.113.0/24"},
		{"?scope=ip&value=192.0.2.1", "192.0.2.1"},
		{"?scope=range&value=192.0.2.1", ""},
	}
	for _, c := range cases {
		code, body := r.get(t, "GET", LivePath+c.query, bouncerKey)
		var ds []csDecision
		if err := json.Unmarshal([]byte(body), &ds); code != 200 || err != nil {
			t.Fatalf("%s: %d %s %v", c.query, code, body, err)
		}
		if got := values(ds); got != c.want {
			t.Errorf("%s: %q, want %q", c.query, got, c.want)
		}
		if c.want == "" && strings.TrimSpace(body) != "null" {
			t.Errorf("%s: empty answer %q, want null", c.query, body)
		}
	}
	if code, _ := r.get(t, "GET", LivePath+"?ip=192.0.2.1", ""); code != http.StatusForbidden {
		t.Fatalf("no key: %d", code)
	}
	if code, _ := r.get(t, "GET", LivePath+"?ip=not-an-ip", bouncerKey); code != http.StatusBadRequest {
		t.Fatalf("bad ip: %d", code)
	}
}
