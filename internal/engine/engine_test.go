package engine

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/fingerprint"
	"github.com/tollguard/tollguard/internal/event"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newEngine(t testing.TB, yaml string) (*Engine, *decision.Set, *recorder) {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	set := decision.NewSet()
	rec := &recorder{}
	e, err := New(cfg, Options{Set: set, Apply: decision.Fanout{set, rec}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return e, set, rec
}

func authFail(src, account string, at time.Time) *event.AuthFailure {
	return &event.AuthFailure{Meta: event.Meta{Time: at, Source: netip.MustParseAddrPort(src)},
		SIP: event.SIP{Method: "REGISTER", AuthUser: account, HasCredentials: true}, Account: account, Code: 403}
}

func TestForgetAfterUnban(t *testing.T) {
	cases := []struct {
		name    string
		forget  bool
		wantBan bool
	}{
		{"without Forget the next failure re-bans", false, true},
		{"Forget clears the counters", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, set, rec := newEngine(t, "jail:\n  register_failure:\n    - {findtime: 1h, maxretry: 3, banmode: ip_account, bantime: 60s}\n    - {findtime: 1h, maxretry: 4, banmode: ip, bantime: 60s}\n")
			ctx := context.Background()
			for i := range 3 {
				e.Check(ctx, authFail("198.51.100.7:5060", "1001", t0.Add(time.Duration(i)*time.Second)))
			}
			if len(rec.got) != 1 {
				t.Fatalf("decisions after 3 failures: %v", rec.got)
			}
			a := netip.MustParseAddr("198.51.100.7")
			set.Remove(rec.got[0].Key(), false)
			if tc.forget {
				e.Forget(a, "")
			}
			e.Check(ctx, authFail("198.51.100.7:5060", "1001", t0.Add(10*time.Second)))
			_, banned := set.Banned(a, t0.Add(11*time.Second))
			if banned != tc.wantBan {
				t.Fatalf("banned after one more failure = %v, want %v (%v)", banned, tc.wantBan, rec.got)
			}
		})
	}
}

func TestFailuresRing(t *testing.T) {
	e, _, _ := newEngine(t, "jail:\n  register_failure:\n    - {findtime: 1s, maxretry: 1000, banmode: ip, bantime: 60s}\nenumeration: {max_accounts: 100000}\n")
	ctx := context.Background()
	for i := range RingSize + 10 {
		e.Check(ctx, authFail("198.51.100.7:5060", "1001", t0.Add(time.Duration(i)*time.Second)))
	}
	e.Check(ctx, &event.AuthFailure{Meta: event.Meta{Time: t0.Add(time.Hour), Source: netip.MustParseAddrPort("198.51.100.7:5060")}, Account: "1001", Code: 401, Stale: true})
	all := e.Failures(time.Time{})
	if len(all) != RingSize {
		t.Fatalf("ring holds %d, want %d", len(all), RingSize)
	}
	if !all[0].Time.Equal(t0.Add(10*time.Second)) || !all[len(all)-1].Time.Equal(t0.Add((RingSize+9)*time.Second)) {
		t.Fatalf("ring spans %v..%v", all[0].Time, all[len(all)-1].Time)
	}
	if got := e.Failures(t0.Add((RingSize + 5) * time.Second)); len(got) != 5 || got[0].Account != "1001" || got[0].Code != 403 || got[0].Method != "REGISTER" {
		t.Fatalf("Failures(since) = %+v", got)
	}
}

func TestReload(t *testing.T) {
	e, _, rec := newEngine(t, "honeypot:\n  accounts: [\"9999\"]\n")
	ctx := context.Background()
	req := func(src, to string) Verdict {
		return e.Check(ctx, &event.Request{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort(src)}, SIP: event.SIP{Method: "REGISTER", ToUser: to}})
	}
	bad, _ := config.Parse("bad.yaml", []byte("honeypot:\n  accounts: [\"8888\"]\n"))
	bad.Fingerprints.File = "does-not-exist.yaml"
	if err := e.Reload(bad); err == nil {
		t.Fatal("Reload with a missing fingerprint file succeeded")
	}
	if v := req("203.0.113.1:5060", "8888"); v.Action != Pass {
		t.Fatalf("a failed Reload half-applied: %+v", v)
	}
	good, _ := config.Parse("good.yaml", []byte("honeypot:\n  accounts: [\"8888\"]\ndeny: [192.0.2.0/24]\n"))
	if err := e.Reload(good); err != nil {
		t.Fatal(err)
	}
	if v := req("203.0.113.2:5060", "8888"); v.Rule != RuleHoneypot {
		t.Fatalf("new honeypot after Reload: %+v", v)
	}
	if v := req("203.0.113.3:5060", "9999"); v.Action != Pass {
		t.Fatalf("old honeypot after Reload: %+v", v)
	}
	if v := e.Admit(netip.MustParseAddr("192.0.2.1"), t0); v.Rule != RuleDeny {
		t.Fatalf("new deny list after Reload: %+v", v)
	}
	if len(rec.got) != 1 {
		t.Fatalf("decisions: %v", rec.got)
	}
}

func TestSetListsAllowsUpstream(t *testing.T) {
	e, _, rec := newEngine(t, "honeypot:\n  accounts: [\"9999\"]\n")
	up := netip.MustParsePrefix("127.0.0.1/32")
	e.SetLists(decision.NewLists(nil, nil).AddAllow(up))
	v := e.Check(context.Background(), &event.Request{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort("127.0.0.1:5080")},
		SIP: event.SIP{Method: "OPTIONS", UserAgent: "friendly-scanner", ToUser: "9999"}})
	if v.Action != Pass || len(rec.got) != 0 {
		t.Fatalf("upstream refused or banned: %+v %v", v, rec.got)
	}
}

func TestCommonPathDoesNotAllocate(t *testing.T) {
	e, _, _ := newEngine(t, "")
	ctx := context.Background()
	req := &event.Request{Meta: event.Meta{Time: t0, Source: netip.MustParseAddrPort("198.51.100.7:5060")},
		SIP: event.SIP{Method: "REGISTER", FromUser: "1001", ToUser: "1001", AuthUser: "1001", HasCredentials: true, UserAgent: "Yealink SIP-T46S 66.86.0.15"}}
	a := netip.MustParseAddr("198.51.100.7")
	if n := testing.AllocsPerRun(1000, func() { e.Check(ctx, req) }); n != 0 {
		t.Errorf("Check(Request) allocated %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { e.Admit(a, t0) }); n != 0 {
		t.Errorf("Admit allocated %v times", n)
	}
}

func TestNewErrors(t *testing.T) {
	cfg := config.Default()
	if _, err := New(cfg, Options{}); err == nil {
		t.Fatal("New without a Set succeeded")
	}
	if _, err := New(cfg, Options{Set: decision.NewSet(), Fingerprints: []byte("fingerprints: []\n")}); err == nil {
		t.Fatal("New with an empty fingerprint list succeeded")
	}
}

// TestLockSurvivesRestart: after a restart the ban set comes back from the
// store (the account lock included) and the wiring feeds the stored
// registrations to Known; the phone's usual address still passes.
func TestLockSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	e, set, _ := newEngine(t, "")
	phone := netip.MustParseAddrPort("198.51.100.10:5060")
	reg := &event.Register{Meta: event.Meta{Time: t0, Source: phone}, SIP: event.SIP{Method: "REGISTER", ToUser: "1001", FromUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"}
	e.Check(ctx, reg)
	for i := range 5 {
		e.Check(ctx, authFail(fmt.Sprintf("203.0.113.%d:5060", 10+i), "1001", t0.Add(time.Duration(i+1)*time.Second)))
	}
	now := t0.Add(time.Minute)
	if _, ok := set.AccountLocked("1001", now); !ok {
		t.Fatal("account not locked")
	}
	cfg, _ := config.Parse("test.yaml", nil)
	set2 := decision.NewSet()
	for _, d := range set.List(now) {
		set2.Add(d)
	}
	e2, err := New(cfg, Options{Set: set2, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	req := func(src netip.AddrPort) Verdict {
		return e2.Check(ctx, &event.Request{Meta: event.Meta{Time: now, Source: src},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1001", FromUser: "1001", AuthUser: "1001", HasCredentials: true}})
	}
	// The lock's memory of failed addresses is in-process: after a restart
	// each may try once more (and is banned for the account at its next
	// failure). Documented in the README.
	if v := req(netip.MustParseAddrPort("203.0.113.10:5060")); v.Action != Pass {
		t.Errorf("an address that failed before the restart: %+v", v)
	}
	e2.Known(phone.Addr(), "1001")
	if v := req(phone); v.Action != Pass {
		t.Errorf("the phone's usual address after a restart: %+v", v)
	}
	if v := req(netip.MustParseAddrPort("198.51.100.99:5060")); v.Action != Pass {
		t.Errorf("a new address with the right password after a restart: %+v", v)
	}
}

func TestFingerprintsFileNeedsBytes(t *testing.T) {
	cfg, err := config.Parse("test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Fingerprints.File = "list.yaml"
	if _, err := New(cfg, Options{Set: decision.NewSet()}); err == nil {
		t.Error("New read nothing and did not complain about fingerprints.file")
	}
	if _, err := New(cfg, Options{Set: decision.NewSet(), Fingerprints: fingerprint.Embedded()}); err != nil {
		t.Errorf("New with the file's bytes: %v", err)
	}
}

// The anomaly model's state survives a reload, and the reload's mode
// applies at once: a flag in shadow, a reject in enforce.
func TestAnomalySurvivesReload(t *testing.T) {
	e, _, _ := newEngine(t, "anomaly: {country: GB}\n")
	trainAnomaly(t, e, e.rules.Load().cfg, []byte(`{"Seed": 5, "Accounts": 12, "TrainDays": 14, "TestDays": 1, "FraudPerPattern": 1, "NoNoise": true}`))
	night := time.Date(2026, 1, 20, 3, 0, 0, 0, time.UTC)
	burst := func(i int) *event.CallAttempt {
		return &event.CallAttempt{Meta: event.Meta{Time: night.Add(time.Duration(i) * time.Minute), Source: netip.MustParseAddrPort("100.64.0.15:5060")},
			SIP: event.SIP{Method: "INVITE", FromUser: "2005"}, Account: "2005", Destination: fmt.Sprintf("+88216000%04d", i)}
	}
	if v := e.Check(t.Context(), burst(0)); v.Action != Pass || v.Rule != RuleAnomaly {
		t.Fatalf("shadow: %+v, want a flag", v)
	}
	cfg, err := config.Parse("t.yaml", []byte("anomaly: {country: GB, mode: enforce}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if e.Anomaly().Model() == nil {
		t.Fatal("reload dropped the model")
	}
	if v := e.Check(t.Context(), burst(1)); v.Action != Reject || v.Code != 403 || v.Rule != RuleAnomaly {
		t.Fatalf("enforce after reload: %+v, want a 403 reject", v)
	}
}
