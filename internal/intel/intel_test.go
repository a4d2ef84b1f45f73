package intel

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tollguard/tollguard/internal/decision"
)

// carrier is the operator's trunk provider: in the allow list.
var carrier = netip.MustParsePrefix("198.51.100.0/24")

type rig struct {
	in  *Intel
	set *decision.Set
	reg *prometheus.Registry
	now time.Time
}

func newRig(t *testing.T, feeds ...FeedConfig) *rig {
	t.Helper()
	r := &rig{set: decision.NewSet(), reg: prometheus.NewRegistry(), now: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	in, err := New(Options{Config: Config{Feeds: feeds}, Apply: OnlyOwn(r.set, r.clock), Allow: []netip.Prefix{carrier},
		Registry: r.reg, Now: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	r.in = in
	return r
}

func (r *rig) clock() time.Time { return r.now }

func (r *rig) banned(s string) bool {
	_, ok := r.set.Banned(netip.MustParseAddr(s), r.now)
	return ok
}

func (r *rig) count(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// listServer serves a mutable body with an ETag and counts conditional
// requests answered 304.
type listServer struct {
	mu          sync.Mutex
	body        string
	notModified int
	requests    int
}

func (s *listServer) set(body string) { s.mu.Lock(); s.body = body; s.mu.Unlock() }

func (s *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	etag := fmt.Sprintf(`"%x"`, len(s.body)*31+int(s.body[0]))
	if r.Header.Get("If-None-Match") == etag {
		s.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	fmt.Fprint(w, s.body)
}

func TestCIDRFeed(t *testing.T) {
	srv := &listServer{body: "# drop list\n192.0.2.1\n203.0.113.0/24 ; SBL1\n\n2001:db8:5::/48\nnot-an-address\n"}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "drop", URL: ts.URL, Format: FormatCIDR, Refresh: time.Hour})
	ctx := context.Background()
	if err := r.in.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"192.0.2.1", "203.0.113.77", "2001:db8:5::9"} {
		if !r.banned(a) {
			t.Errorf("%s not banned", a)
		}
	}
	d, _ := r.set.Banned(netip.MustParseAddr("203.0.113.77"), r.now)
	if d.Origin != "intel:drop" || d.Scope != decision.ScopePrefix || !d.Until.Equal(r.now.Add(2*time.Hour)) {
		t.Errorf("ban = %+v; want origin intel:drop, prefix scope, until now+2h", d)
	}
	if v := r.count(t, r.in.m.rejected, "drop", "malformed"); v != 1 {
		t.Errorf("malformed = %v, want 1", v)
	}

	// Unchanged: a 304, nothing re-applied.
	if err := r.in.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if srv.notModified != 1 || r.count(t, r.in.m.fetches, "drop", "not_modified") != 1 {
		t.Fatalf("second pull: %d 304s, want 1", srv.notModified)
	}
	// Past half its life, an unchanged feed's bans are extended.
	r.now = r.now.Add(90 * time.Minute)
	if err := r.in.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.set.Banned(netip.MustParseAddr("192.0.2.1"), r.now); !d.Until.Equal(r.now.Add(2 * time.Hour)) {
		t.Fatalf("not extended: until %v, want %v", d.Until, r.now.Add(2*time.Hour))
	}

	// A changed list: removals lifted, additions banned.
	srv.set("192.0.2.1\n192.0.2.99\n")
	if err := r.in.Refresh(ctx, "drop"); err != nil {
		t.Fatal(err)
	}
	if r.banned("203.0.113.77") || r.banned("2001:db8:5::9") || !r.banned("192.0.2.99") || !r.banned("192.0.2.1") {
		t.Fatal("the changed list was not applied")
	}
	if s := r.in.Status()[0]; s.Entries != 2 || s.LastError != "" {
		t.Fatalf("status %+v", s)
	}
}

func TestPoisonedFeed(t *testing.T) {
	srv := &listServer{body: strings.Join([]string{
		"0.0.0.0/0", "::/0", "192.0.0.0/8", "198.51.100.20", "198.51.0.0/16", "10.0.0.0/8", "192.168.1.1",
		"127.0.0.1", "224.0.0.1", "2001:db8::/20", "192.0.2.66", "2001:db8:77::1"}, "\n")}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "evil", URL: ts.URL, Format: FormatCIDR})
	if err := r.in.Refresh(context.Background(), "evil"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"8.8.8.8", "198.51.100.20", "198.51.100.1", "10.1.1.1", "192.168.1.1", "127.0.0.1", "2001:db8:1::1"} {
		if r.banned(a) {
			t.Errorf("poisoned feed banned %s", a)
		}
	}
	if !r.banned("192.0.2.66") || !r.banned("2001:db8:77::1") {
		t.Error("the feed's real entries were not applied")
	}
	if v := r.count(t, r.in.m.rejected, "evil", "refused"); v != 10 {
		t.Errorf("refused = %v, want 10", v)
	}
}

func TestShrinkingFeedIsSuspicious(t *testing.T) {
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "192.0.2.%d\n", i+1)
	}
	srv := &listServer{body: b.String()}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "big", URL: ts.URL, Format: FormatCIDR, ShrinkConfirmations: 3})
	ctx := context.Background()
	if err := r.in.Refresh(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	srv.set("192.0.2.1\n192.0.2.2\n192.0.2.3\n192.0.2.4\n192.0.2.5\n192.0.2.6\n192.0.2.7\n192.0.2.8\n192.0.2.9\n192.0.2.10\n")
	for i := 1; i <= 2; i++ {
		if err := r.in.Refresh(ctx, "big"); err == nil {
			t.Fatalf("pull %d of a list shrunk by 90%% was accepted", i)
		}
		if !r.banned("192.0.2.50") || r.in.Status()[0].Entries != 100 || !r.in.Status()[0].Suspicious {
			t.Fatalf("pull %d: the previous list was not kept: %+v", i, r.in.Status()[0])
		}
	}
	if v := r.count(t, r.in.m.suspicious, "big"); v != 2 {
		t.Fatalf("suspicious = %v, want 2", v)
	}
	// The same shrunk list a third time is believed.
	if err := r.in.Refresh(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if r.banned("192.0.2.50") || !r.banned("192.0.2.10") || r.in.Status()[0].Entries != 10 {
		t.Fatalf("after confirmations: %+v", r.in.Status()[0])
	}
}

func TestEmptyBodyIsSuspicious(t *testing.T) {
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "192.0.2.%d\n", i+1)
	}
	srv := &listServer{body: b.String()}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "f", URL: ts.URL, Format: FormatCIDR})
	if err := r.in.Refresh(context.Background(), "f"); err != nil {
		t.Fatal(err)
	}
	srv.set("# nothing today\n")
	if err := r.in.Refresh(context.Background(), "f"); err == nil || !r.banned("192.0.2.30") {
		t.Fatalf("an empty list replaced 30 entries (err %v)", err)
	}
}

func TestOversizeAndGarbage(t *testing.T) {
	big := strings.Repeat("192.0.2.1\n", 200)
	cases := []struct {
		name   string
		body   string
		chunk  bool
		result string
	}{
		{"content-length over the cap", big, false, "oversize"},
		{"chunked body over the cap", big, true, "oversize"},
		{"html error page", "<html><body>502 Bad Gateway</body></html>\n", false, "error"},
		{"binary", "\x00\xff\xfe\x01garbage", false, "error"},
		{"json where a list was expected", `{"error":"x"}`, false, "error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if c.chunk {
					w.(http.Flusher).Flush()
				}
				fmt.Fprint(w, c.body)
			}))
			defer ts.Close()
			r := newRig(t, FeedConfig{Name: "f", URL: ts.URL, Format: FormatCIDR, MaxBytes: 1000})
			if err := r.in.Refresh(context.Background(), "f"); err == nil {
				t.Fatal("accepted")
			}
			if v := r.count(t, r.in.m.fetches, "f", c.result); v != 1 {
				t.Fatalf("result %s counted %v times, want 1", c.result, v)
			}
			if r.set.Len() != 0 {
				t.Fatal("something was banned")
			}
		})
	}
}

func TestTooManyEntries(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "192.0.2.1\n192.0.2.2\n192.0.2.3\n")
	}))
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "f", URL: ts.URL, Format: FormatCIDR, MaxEntries: 2})
	if err := r.in.Refresh(context.Background(), "f"); err == nil || r.set.Len() != 0 {
		t.Fatalf("a list over max_entries was applied (err %v)", err)
	}
}

func TestFileFeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(path, []byte("192.0.2.5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, FeedConfig{Name: "local", URL: "file://" + path, Format: FormatCIDR})
	ctx := context.Background()
	if err := r.in.Refresh(ctx, "local"); err != nil || !r.banned("192.0.2.5") {
		t.Fatalf("file feed: %v", err)
	}
	if err := r.in.Refresh(ctx, "local"); err != nil || r.count(t, r.in.m.fetches, "local", "not_modified") != 1 {
		t.Fatalf("unchanged file not skipped: %v", err)
	}
	if err := os.WriteFile(path, []byte("192.0.2.6\n192.0.2.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.in.Refresh(ctx, "local"); err != nil || r.banned("192.0.2.5") || !r.banned("192.0.2.7") {
		t.Fatalf("changed file not applied: %v", err)
	}
}

func TestAPIBAN(t *testing.T) {
	const key = "k3y0000secret"
	var mu sync.Mutex
	var paths []string
	pages := map[string]string{
		"/api/" + key + "/banned":      `{"ipaddress":["192.0.2.1","192.0.2.2","198.51.100.9"],"ID":"1001"}`,
		"/api/" + key + "/banned/1001": `{"ipaddress":["2001:db8::7","bogus"],"ID":"1002"}`,
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if body, ok := pages[r.URL.Path]; ok {
			fmt.Fprint(w, body)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/"+key+"/banned/") {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"ipaddress":["no new bans"],"ID":"none"}`)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"ipaddress":"none","ID":"unauthorized"}`)
	}))
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "apiban", URL: ts.URL + "/api/" + key + "/banned", Format: FormatAPIBAN})
	ctx := context.Background()
	if err := r.in.Refresh(ctx, "apiban"); err != nil {
		t.Fatal(err)
	}
	want := []string{"/api/" + key + "/banned", "/api/" + key + "/banned/1001", "/api/" + key + "/banned/1002"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", paths, want)
	}
	if !r.banned("192.0.2.1") || !r.banned("2001:db8::7") || r.banned("198.51.100.9") {
		t.Fatal("apiban entries not applied as expected (carrier must stay allowed)")
	}
	if d, _ := r.set.Banned(netip.MustParseAddr("192.0.2.2"), r.now); !d.Until.Equal(r.now.Add(7 * 24 * time.Hour)) {
		t.Fatalf("until %v, want 7 days", d.Until)
	}
	// The next pull resumes from the last ID.
	paths = nil
	if err := r.in.Refresh(ctx, "apiban"); err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || paths[0] != "/api/"+key+"/banned/1002" {
		t.Fatalf("resumed with %v", paths)
	}
	// Eight days later the bans have expired and the feed forgets them.
	r.now = r.now.Add(8 * 24 * time.Hour)
	if err := r.in.Refresh(ctx, "apiban"); err != nil || r.in.Status()[0].Entries != 0 || r.banned("192.0.2.1") {
		t.Fatalf("after expiry: %v, %+v", err, r.in.Status()[0])
	}
}

func TestKeysNeverInErrors(t *testing.T) {
	const key = "k3y0000secret"
	ts := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	base := ts.URL
	ts.Close() // refused from now on
	r := newRig(t,
		FeedConfig{Name: "apiban", URL: base + "/api/" + key + "/banned", Format: FormatAPIBAN},
		FeedConfig{Name: "lapi", URL: base + "/", Format: FormatCrowdSec, APIKey: key})
	for _, f := range []string{"apiban", "lapi"} {
		err := r.in.Refresh(context.Background(), f)
		if err == nil || strings.Contains(err.Error(), key) {
			t.Fatalf("%s: error %v (must exist and not contain the key)", f, err)
		}
		if s := r.in.Status(); strings.Contains(fmt.Sprint(s), key) {
			t.Fatalf("status leaks the key: %v", s)
		}
	}
}

func TestRedirectElsewhereRefused(t *testing.T) {
	var leaked bool
	other := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("X-Api-Key") != ""
	}))
	defer other.Close()
	ts := httptest.NewServer(http.RedirectHandler(strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/v1/decisions/stream", http.StatusFound))
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "lapi", URL: ts.URL, Format: FormatCrowdSec, APIKey: "secret"})
	if err := r.in.Refresh(context.Background(), "lapi"); err == nil || leaked {
		t.Fatalf("redirect to another host followed (err %v, key leaked %v)", err, leaked)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := FeedConfig{Name: "f", URL: "https://example.net/list", Format: FormatCIDR}
	cases := []struct {
		name string
		mod  func(*Config)
		good bool
	}{
		{"defaults", func(*Config) {}, true},
		{"bad name", func(c *Config) { c.Feeds[0].Name = "Bad Name" }, false},
		{"bad format", func(c *Config) { c.Feeds[0].Format = "xml" }, false},
		{"relative path", func(c *Config) { c.Feeds[0].URL = "lists/x.txt" }, false},
		{"absolute path", func(c *Config) { c.Feeds[0].URL = "/var/lib/lists/x.txt" }, true},
		{"crowdsec without key", func(c *Config) { c.Feeds[0].Format = FormatCrowdSec }, false},
		{"crowdsec from a file", func(c *Config) {
			c.Feeds[0].Format, c.Feeds[0].APIKey, c.Feeds[0].URL = FormatCrowdSec, "k", "/x"
		}, false},
		{"duplicate", func(c *Config) { c.Feeds = append(c.Feeds, c.Feeds[0]) }, false},
		{"min prefix too small", func(c *Config) { c.MinPrefixV4 = 4 }, false},
		{"ban_for shorter than refresh", func(c *Config) { c.Feeds[0].BanFor = time.Minute }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Feeds: []FeedConfig{ok}}
			c.mod(&cfg)
			if err := cfg.WithDefaults().Validate(); (err == nil) != c.good {
				t.Fatalf("Validate = %v, want ok=%v", err, c.good)
			}
		})
	}
}

func TestOnlyOwn(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	mk := func(origin string, typ decision.Type, until time.Duration) decision.Decision {
		return decision.Decision{Type: typ, Scope: decision.ScopeIP, Prefix: netip.MustParsePrefix("192.0.2.1/32"),
			Origin: origin, At: now, Until: now.Add(until)}
	}
	cases := []struct {
		name      string
		have      *decision.Decision
		apply     decision.Decision
		wantOrig  string // "" = not banned
		wantUntil time.Duration
	}{
		{"feed ban on nothing", nil, mk("intel:a", decision.TypeBan, time.Hour), "intel:a", time.Hour},
		{"feed ban does not shorten an engine ban", ptr(mk("engine", decision.TypeBan, 3*time.Hour)),
			mk("intel:a", decision.TypeBan, time.Hour), "engine", 3 * time.Hour},
		{"feed ban extends a shorter engine ban", ptr(mk("engine", decision.TypeBan, time.Minute)),
			mk("intel:a", decision.TypeBan, time.Hour), "intel:a", time.Hour},
		{"feed unban cannot lift an operator ban", ptr(mk("admin", decision.TypeBan, time.Hour)),
			mk("intel:a", decision.TypeUnban, 0), "admin", time.Hour},
		{"feed unban lifts its own ban", ptr(mk("intel:a", decision.TypeBan, time.Hour)),
			mk("intel:a", decision.TypeUnban, 0), "", 0},
		{"feed unban cannot lift another feed's ban", ptr(mk("intel:b", decision.TypeBan, time.Hour)),
			mk("intel:a", decision.TypeUnban, 0), "intel:b", time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := decision.NewSet()
			if c.have != nil {
				set.Apply(*c.have)
			}
			OnlyOwn(set, clock).Apply(c.apply)
			got, ok := set.Banned(netip.MustParseAddr("192.0.2.1"), now)
			if c.wantOrig == "" {
				if ok {
					t.Fatalf("still banned: %+v", got)
				}
				return
			}
			if !ok || got.Origin != c.wantOrig || !got.Until.Equal(now.Add(c.wantUntil)) {
				t.Fatalf("got %+v (%v), want origin %s until +%v", got, ok, c.wantOrig, c.wantUntil)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
