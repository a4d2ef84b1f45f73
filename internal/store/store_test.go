package store

import (
	"context"
	"net/netip"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// backend is one store under test: a driver, its config and data dir.
type backend struct {
	name string
	cfg  config.Store
	dir  string
}

var drivers = []string{"sqlite", "postgres"}

// eachBackend runs fn once per driver, each on a fresh, empty store.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, name := range drivers {
		t.Run(name, func(t *testing.T) { fn(t, newBackend(t, name)) })
	}
}

func newBackend(tb testing.TB, name string) backend {
	tb.Helper()
	b := backend{name: name, cfg: config.Default().Store, dir: tb.TempDir()}
	b.cfg.Driver = name
	if name == "postgres" {
		b.cfg.DSN = pgDatabase(tb)
	}
	return b
}

func (b backend) open(tb testing.TB, opts Options) *sqlStore {
	tb.Helper()
	s, err := Open(context.Background(), b.cfg, b.dir, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s.(*sqlStore)
}

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// everyKind returns one fully populated event of each kind.
func everyKind() []event.Event {
	meta := func(i int, src string) event.Meta {
		return event.Meta{Time: t0.Add(time.Duration(i) * time.Second), Source: ap(src), Transport: "udp", Listener: "udp://0.0.0.0:5060"}
	}
	sip := event.SIP{
		Method: "INVITE", CallID: "c1@host", FromUser: "1001", FromName: "Alice", ToUser: "0088612345678",
		RURIUser: "0088612345678", UserAgent: "friendly-scanner", HasCredentials: true, AuthUser: "1001",
		Instance: "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>", Path: []string{"udp 203.0.113.7:5060", "udp 10.0.0.2:5060"},
	}
	reg := sip
	reg.Method = "REGISTER"
	return []event.Event{
		&event.Request{Meta: meta(0, "203.0.113.7:5060"), SIP: sip},
		&event.Response{Meta: meta(1, "203.0.113.7:5060"), SIP: sip, Code: 407, Stale: true},
		&event.AuthFailure{Meta: meta(2, "203.0.113.7:5060"), SIP: reg, Account: "1001", Code: 403},
		&event.Register{Meta: meta(3, "198.51.100.2:5062"), SIP: reg, Account: "1001", Expires: 3600},
		&event.CallAttempt{Meta: meta(4, "198.51.100.2:5062"), SIP: sip, Account: "1001", Destination: "0088612345678"},
		&event.CallAnswered{Meta: meta(5, "198.51.100.2:5062"), SIP: sip, Account: "1001", Destination: "0088612345678"},
		&event.CallEnded{Meta: meta(6, "198.51.100.2:5062"), SIP: sip, Account: "1001", Destination: "0088612345678",
			Code: 0, Duration: 95 * time.Second, Billsec: 80 * time.Second, Cause: "bye"},
		&event.Ban{Meta: meta(7, "127.0.0.1:9061"), Scope: "ip", Value: "203.0.113.7", Rule: "register_failure[0]",
			Reason: "3 failures in 60s", Until: t0.Add(time.Hour), Actor: "engine"},
		&event.Unban{Meta: meta(8, "127.0.0.1:9061"), Scope: "ip", Value: "203.0.113.7", Reason: "operator", Actor: "alice"},
		&event.Verdict{Meta: meta(9, "[2001:db8::7]:5060"), SIP: sip, Action: "reject", Code: 403, Rule: "scanner", Reason: "sipvicious"},
		&event.Admin{Meta: meta(10, "127.0.0.1:40000"), Actor: "alice", Action: "unmask", Target: "events", Detail: "--ip 203.0.113.7"},
	}
}

func TestRoundTripEveryKind(t *testing.T) {
	// everyKind's order is what the other tests' sequence numbers assume;
	// kinds added later go here.
	ring := &event.CallRinging{Meta: event.Meta{Time: t0.Add(11 * time.Second), Source: ap("198.51.100.2:5062"), Transport: "udp"},
		SIP: event.SIP{Method: "INVITE", CallID: "c1@host", FromUser: "1001", RURIUser: "0088612345678"}, Account: "1001", Destination: "0088612345678", Code: 180}
	evs := append(everyKind(), ring)
	seen := map[event.Kind]bool{}
	for _, ev := range evs {
		seen[ev.Kind()] = true
	}
	for _, k := range event.Kinds() {
		if !seen[k] {
			t.Fatalf("fixture lacks kind %s", k)
		}
	}
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t, Options{})
		for _, ev := range evs {
			s.Record(ev)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s = b.open(t, Options{ReadOnly: true})
		recs, err := s.Query(context.Background(), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(evs) {
			t.Fatalf("got %d records, want %d", len(recs), len(evs))
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
		for i, r := range recs {
			want := evs[i]
			if r.Seq != int64(i+1) || r.Kind != want.Kind() || !r.Time.Equal(want.Base().Time) {
				t.Errorf("record %d: seq %d kind %s time %v; want kind %s time %v", i, r.Seq, r.Kind, r.Time, want.Kind(), want.Base().Time)
			}
			if !reflect.DeepEqual(r.Event, want) {
				t.Errorf("%s did not round-trip:\n got %#v\nwant %#v", want.Kind(), r.Event, want)
			}
		}
		byKind := map[event.Kind]Record{}
		for _, r := range recs {
			byKind[r.Kind] = r
		}
		cols := []struct {
			kind    event.Kind
			ip      string
			account string
			callID  string
			code    int
			rule    string
		}{
			{event.KindRequest, "203.0.113.7", "1001", "c1@host", 0, ""},
			{event.KindResponse, "203.0.113.7", "1001", "c1@host", 407, ""},
			{event.KindAuthFailure, "203.0.113.7", "1001", "c1@host", 403, ""},
			{event.KindCallEnded, "198.51.100.2", "1001", "c1@host", 0, ""},
			{event.KindBan, "127.0.0.1", "", "", 0, "register_failure[0]"},
			{event.KindVerdict, "2001:db8::7", "1001", "c1@host", 403, "scanner"},
			{event.KindAdmin, "127.0.0.1", "", "", 0, "unmask"},
		}
		for _, c := range cols {
			r := byKind[c.kind]
			if r.IP.String() != c.ip || r.Account != c.account || r.CallID != c.callID || r.Code != c.code || r.Rule != c.rule {
				t.Errorf("%s columns: ip %s account %q call_id %q code %d rule %q; want %s %q %q %d %q",
					c.kind, r.IP, r.Account, r.CallID, r.Code, r.Rule, c.ip, c.account, c.callID, c.code, c.rule)
			}
		}
	})
}

func TestQueryFilters(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t, Options{})
		ctx := context.Background()
		for _, ev := range everyKind() {
			s.Record(ev)
		}
		// A ban without a source is found by the banned address.
		s.Record(&event.Ban{Meta: event.Meta{Time: t0.Add(20 * time.Second)}, Scope: "ip", Value: "192.0.2.99", Rule: "flood"})
		if err := s.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			f    Filter
			want []int64
		}{
			{"all", Filter{}, []int64{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
			{"ip", Filter{IP: netip.MustParseAddr("203.0.113.7")}, []int64{3, 2, 1}},
			{"ip mapped", Filter{IP: netip.MustParseAddr("::ffff:203.0.113.7")}, []int64{3, 2, 1}},
			{"ipv6", Filter{IP: netip.MustParseAddr("2001:db8::7")}, []int64{10}},
			{"banned address", Filter{IP: netip.MustParseAddr("192.0.2.99")}, []int64{12}},
			{"account", Filter{Account: "1001"}, []int64{10, 7, 6, 5, 4, 3, 2, 1}},
			{"account unknown", Filter{Account: "9999"}, nil},
			{"call id", Filter{CallID: "c1@host", Kinds: []event.Kind{event.KindCallEnded}}, []int64{7}},
			{"kinds", Filter{Kinds: []event.Kind{event.KindBan, event.KindUnban}}, []int64{12, 9, 8}},
			{"since", Filter{Since: t0.Add(9 * time.Second)}, []int64{12, 11, 10}},
			{"until", Filter{Until: t0.Add(2 * time.Second)}, []int64{2, 1}},
			{"since until ip", Filter{IP: netip.MustParseAddr("198.51.100.2"), Since: t0.Add(4 * time.Second), Until: t0.Add(6 * time.Second)}, []int64{6, 5}},
			{"limit", Filter{Limit: 2}, []int64{12, 11}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				recs, err := s.Query(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				for _, r := range recs {
					got = append(got, r.Seq)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got seqs %v, want %v", got, tt.want)
				}
			})
		}
	})
}

func TestAttackerTextFitsColumns(t *testing.T) {
	long := string(make([]byte, 5000)) + "\xff\xfe"
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t, Options{})
		ev := &event.Request{Meta: event.Meta{Time: t0, Source: ap("203.0.113.9:5060")},
			SIP: event.SIP{Method: "OPTIONS", CallID: long, FromUser: "a\x00b\xffc"}}
		s.Record(ev)
		if err := s.Flush(context.Background()); err != nil {
			t.Fatalf("a hostile Call-ID broke the batch: %v", err)
		}
		recs, err := s.Query(context.Background(), Filter{CallID: long})
		if err != nil || len(recs) != 1 {
			t.Fatalf("query by hostile Call-ID: %d records, %v", len(recs), err)
		}
		if len(recs[0].CallID) > maxColumn {
			t.Errorf("call_id column is %d bytes, want at most %d", len(recs[0].CallID), maxColumn)
		}
	})
}

func TestBans(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := &clock{t: t0}
		s := b.open(t, Options{Now: clk.Now})
		ip := decision.HostPrefix(netip.MustParseAddr("203.0.113.7"))
		bans := []decision.Decision{
			{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: ip, Origin: "engine", Rule: "scanner", At: t0, Until: t0.Add(time.Hour), Count: 2},
			{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: ip, Account: "1001", Origin: "engine", Rule: "register_failure[0]", At: t0, Until: t0.Add(3 * time.Minute)},
			{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(netip.MustParseAddr("::ffff:198.51.100.2")), Account: "1002", Origin: "engine", Rule: "register_failure[0]", At: t0, Until: t0.Add(time.Minute)},
			{Type: decision.TypeBan, Scope: decision.ScopePrefix, Prefix: netip.MustParsePrefix("2001:db8::/64"), Origin: "admin", Rule: "admin", At: t0},
			{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1003", Origin: "engine", Rule: "distributed", At: t0, Until: t0.Add(2 * time.Hour)},
		}
		for _, d := range bans {
			if err := s.SaveBan(ctx, d); err != nil {
				t.Fatalf("SaveBan %s: %v", d, err)
			}
		}
		// Replacing a ban keeps one row with the new expiry.
		longer := bans[0]
		longer.Until = t0.Add(2 * time.Hour)
		if err := s.SaveBan(ctx, longer); err != nil {
			t.Fatal(err)
		}
		// Ban events were committed with the bans, no Flush needed.
		evs, err := s.Query(ctx, Filter{Kinds: []event.Kind{event.KindBan}})
		if err != nil || len(evs) != 6 {
			t.Fatalf("ban events: %d, %v; want 6", len(evs), err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = b.open(t, Options{Now: clk.Now})
		got, err := s.ActiveBans(ctx, t0.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"ip 203.0.113.7 until 14:00", "ip_account 1001@203.0.113.7 until 12:03", "prefix 2001:db8::/64 until never", "account 1003 until 14:00"}
		if g := banStrings(got); !sameSet(g, want) {
			t.Errorf("active bans after reopen:\n got %v\nwant %v", g, want)
		}
		// Lifting the address lifts its ip_account bans too.
		unban := decision.Decision{Type: decision.TypeUnban, Scope: decision.ScopeIP, Prefix: ip, Origin: "alice", Reason: "customer called"}
		if err := s.DeleteBan(ctx, unban); err != nil {
			t.Fatal(err)
		}
		got, err = s.ActiveBans(ctx, t0.Add(2*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if g := banStrings(got); !sameSet(g, want[2:]) {
			t.Errorf("after unban: got %v, want %v", g, want[2:])
		}
		un, err := s.Query(ctx, Filter{Kinds: []event.Kind{event.KindUnban}})
		if err != nil || len(un) != 1 {
			t.Fatalf("unban events: %d, %v", len(un), err)
		}
		if u := un[0].Event.(*event.Unban); u.Actor != "alice" || u.Reason != "customer called" || u.Value != "203.0.113.7" {
			t.Errorf("unban event = %+v", u)
		}
		var n int
		if err := s.db.sql.QueryRow(`SELECT COUNT(*) FROM bans`).Scan(&n); err != nil || n != 2 {
			t.Errorf("expired bans not cleaned up: %d rows, %v", n, err)
		}
	})
}

func banStrings(ds []decision.Decision) []string {
	var out []string
	for _, d := range ds {
		u := "never"
		if !d.Until.IsZero() {
			u = d.Until.UTC().Format("15:04")
		}
		out = append(out, string(d.Scope)+" "+d.Target()+" until "+u)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

func TestCloseDrainsQueue(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t, Options{BatchSize: 100})
		const n = 5000
		for i := range n {
			s.Record(&event.Request{Meta: event.Meta{Time: t0.Add(time.Duration(i)), Source: ap("203.0.113.7:5060")}, SIP: event.SIP{Method: "OPTIONS"}})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Record(&event.Request{}) // after Close: dropped, not a panic
		s = b.open(t, Options{ReadOnly: true})
		recs, err := s.Query(context.Background(), Filter{Limit: 2 * n})
		if err != nil || len(recs) != n {
			t.Fatalf("after Close: %d records, %v; want %d", len(recs), err, n)
		}
		rep, err := soleChain(context.Background(), s)
		if err != nil || !rep.OK || rep.Records != n {
			t.Fatalf("Verify = %+v, %v", rep, err)
		}
	})
}

func TestMaskNumber(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"mobile", "13812345678", "138****5678"},
		{"international", "+8613812345678", "+86*******5678"},
		{"extension", "1001", "1001"},
		{"six digits", "123456", "123456"},
		{"name", "alice-desk", "alice-desk"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskNumber(tt.in); got != tt.want {
				t.Errorf("MaskNumber(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	r := Record{Account: "13812345678", Event: &event.CallAttempt{Account: "13812345678", Destination: "0088612345678", SIP: event.SIP{ToUser: "0088612345678"}}}
	r.Mask()
	ca := r.Event.(*event.CallAttempt)
	if r.Account != "138****5678" || ca.Destination != "008******5678" || ca.SIP.ToUser != "008******5678" {
		t.Errorf("Mask left numbers: %q %q %q", r.Account, ca.Destination, ca.SIP.ToUser)
	}
}

// TestMaskText checks numbers inside free text are masked in the admin
// trail too (an operator's ban of 13812345678@198.51.100.9 must not leak
// the number in masked output), while addresses and times stay readable.
func TestMaskText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"account at address", "13812345678@198.51.100.9", "138****5678@198.51.100.9"},
		{"detail", "ban 13812345678@198.51.100.9 for=10m0s reason=x", "ban 138****5678@198.51.100.9 for=10m0s reason=x"},
		{"two numbers", "0088612345678 then 13812345678", "008******5678 then 138****5678"},
		{"time and address untouched", "until 2026-11-21T05:49:56Z from 2001:db8::1", "until 2026-11-21T05:49:56Z from 2001:db8::1"},
		{"extension untouched", "unban 1001@198.51.100.7", "unban 1001@198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskText(tt.in); got != tt.want {
				t.Errorf("MaskText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	r := Record{Event: &event.Admin{Action: "ban", Target: "13812345678@198.51.100.9", Detail: "ban 13812345678@198.51.100.9"}}
	r.Mask()
	if a := r.Event.(*event.Admin); a.Target != "138****5678@198.51.100.9" || a.Detail != "ban 138****5678@198.51.100.9" {
		t.Errorf("admin record not masked: %+v", a)
	}
}
