package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/callpolicy/rates"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/teardown"
	"github.com/tollguard/tollguard/internal/users"
)

// fakeBans is an in-memory ban service: the daemon's, without the engine.
type fakeBans struct {
	mu  sync.Mutex
	set *decision.Set
}

func (f *fakeBans) Summary(context.Context) (api.BanSummary, error) {
	return api.BanSummary{Now: time.Now(), Bans: f.set.List(time.Now()),
		Jail: []api.JailRule{{Name: "register_failure[0]", FindTime: api.Duration(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: api.Duration(3 * time.Minute)}}}, nil
}

func (f *fakeBans) Ban(_ context.Context, r api.BanRequest) (decision.Decision, error) {
	now := time.Now()
	d := decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(r.IP),
		Origin: r.Actor, Rule: "admin", Reason: r.Reason, At: now, Until: now.Add(r.For)}
	if r.Account != "" {
		d.Scope, d.Account = decision.ScopeIPAccount, r.Account
	}
	f.set.Add(d)
	return d, nil
}

func (f *fakeBans) Unban(_ context.Context, ip netip.Addr, account, _ string) ([]decision.Decision, error) {
	k := decision.Key{Scope: decision.ScopeIP, Prefix: decision.HostPrefix(ip)}
	if account != "" {
		k = decision.Key{Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(ip), Account: account}
	}
	return f.set.Remove(k, account == ""), nil
}

// fakeCalls is the proxy's running calls, without SIP.
type fakeCalls struct {
	mu    sync.Mutex
	calls []teardown.Call
	hung  []string
}

func (f *fakeCalls) Calls() []teardown.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]teardown.Call(nil), f.calls...)
}

func (f *fakeCalls) HangupCall(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.calls {
		if c.ID == id {
			f.calls = append(f.calls[:i], f.calls[i+1:]...)
			f.hung = append(f.hung, id)
			return nil
		}
	}
	return teardown.ErrNoCall
}

func (f *fakeCalls) SetDeadline(string, time.Time) error { return nil }

func (f *fakeCalls) hungUp() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.hung...)
}

// fakePolicy is the lockdown switch, without the engine.
type fakePolicy struct {
	mu    sync.Mutex
	state api.LockdownState
	calls *fakeCalls
}

func (f *fakePolicy) Lockdown(context.Context) (api.LockdownState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, nil
}

func (f *fakePolicy) SetLockdown(_ context.Context, on, hangup bool, _ string) (api.LockdownState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state.On, f.state.Since, f.state.Hangups = on, time.Now(), 0
	if on && hangup {
		f.calls.mu.Lock()
		f.state.Hangups = len(f.calls.calls)
		f.calls.calls = nil
		f.calls.mu.Unlock()
	}
	return f.state, nil
}

func (f *fakePolicy) isOn() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.On
}

func (f *fakePolicy) CheckCall(context.Context, string, netip.Addr, string) api.CheckReply {
	return api.CheckReply{Result: "allow"}
}

func (f *fakePolicy) NewToken(context.Context, string) (api.TokenReply, error) {
	return api.TokenReply{}, nil
}

// testPrice prices calls to +882 (an international network) at 2.50 USD
// a minute, per minute; nothing else.
func testPrice(dst string, billsec time.Duration) (rates.Amount, string, bool) {
	if !strings.HasPrefix(dst, "+882") {
		return 0, "", false
	}
	r := rates.Rate{Prefix: "+882", PerMinute: 2500000, Currency: "USD", Increment: 60}
	return r.Cost(billsec), r.Currency, true
}

// harness is the admin API with the console mounted, on a loopback test
// server, over a real SQLite store.
type harness struct {
	t     *testing.T
	dir   string
	users *users.File
	bans  *fakeBans
	calls *fakeCalls
	pol   *fakePolicy
	st    store.Store
	srv   *httptest.Server
	con   *Console
	api   *api.Server
}

const testPassword = "correct horse battery"

func newHarness(t *testing.T, ui config.UI) *harness {
	t.Helper()
	return newHarnessWith(t, ui, nil)
}

// newHarnessWith is newHarness with edit applied to the console's
// options before it is built.
func newHarnessWith(t *testing.T, ui config.UI, edit func(*Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, dir: dir, users: users.Open(dir), bans: &fakeBans{set: decision.NewSet()}, calls: &fakeCalls{}}
	h.pol = &fakePolicy{calls: h.calls, state: api.LockdownState{AllowAccounts: []string{"1000"}}}
	st, err := store.Open(context.Background(), config.Default().Store, dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	t.Cleanup(func() { st.Close() })
	h.api, err = api.New(api.Options{Listen: "127.0.0.1:0", DataDir: dir, Bans: h.bans,
		Audit: func(_ context.Context, a event.Admin) { st.Record(&a) }})
	if err != nil {
		t.Fatal(err)
	}
	h.api.MountEvents(st)
	h.api.MountCalls(h.calls)
	h.api.MountPolicy(h.pol)
	if ui.IdleTimeout == 0 {
		ui = config.Default().UI
	}
	o := Options{Users: h.users, UI: ui, API: h.api.Handler(), Bans: h.bans.set.List,
		Hourly: st.(store.Aggregator), Events: st, Prices: func() Pricer { return testPrice }, Audit: func(_ context.Context, a event.Admin) { st.Record(&a) }, LivePoll: 100 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	h.con, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.api.MountPublic(Prefix, h.con.Handler())
	h.srv = httptest.NewServer(h.api.Handler())
	t.Cleanup(func() { h.con.Close(); h.srv.Close() })
	return h
}

// addUser creates a user and returns it (with its TOTP secret).
func (h *harness) addUser(name string, role users.Role) users.User {
	h.t.Helper()
	u, err := h.users.Add(name, role, testPassword, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	return u
}

// code returns u's current TOTP code, or the next step's when next.
func (h *harness) code(u users.User, next bool) string {
	h.t.Helper()
	at := time.Now()
	if next {
		at = at.Add(30 * time.Second)
	}
	c, err := users.Code(u.TOTP, at)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// client is one browser: a cookie jar and the CSRF token of its session.
type client struct {
	h    *harness
	hc   *http.Client
	csrf string
}

func (h *harness) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{h: h, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request with the console's Origin, the CSRF token when
// csrf is set, and returns the status and body.
func (c *client) do(method, path, body string, hdr map[string]string) (int, string, http.Header) {
	c.h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.h.srv.URL+path, rd)
	if err != nil {
		c.h.t.Fatal(err)
	}
	req.Header.Set("Origin", c.h.srv.URL)
	if c.csrf != "" {
		req.Header.Set(CSRFHeader, c.csrf)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// login logs c in as u and keeps the CSRF token.
func (c *client) login(u users.User, next bool) {
	c.h.t.Helper()
	body, _ := json.Marshal(LoginBody{Name: u.Name, Password: testPassword, Code: c.h.code(u, next)})
	code, resp, _ := c.do("POST", "/ui/login", string(body), nil)
	if code != http.StatusOK {
		c.h.t.Fatalf("login %s: %d %s", u.Name, code, resp)
	}
	var s SessionReply
	if err := json.Unmarshal([]byte(resp), &s); err != nil || s.CSRF == "" {
		c.h.t.Fatalf("login reply %s: %v", resp, err)
	}
	c.csrf = s.CSRF
}
