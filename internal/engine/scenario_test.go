package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

var gen = flag.Bool("gen", false, "rewrite testdata/<scenario>/events.jsonl and config.yaml from the scenarios (then run -run TestData -update)")

// sim plays attackers and phones against an engine and a model PBX that
// challenges requests without credentials, refuses wrong passwords with
// 403 and accepts right ones. Each step feeds the engine what the guard's
// tap would (Request, CallAttempt, Response and the event it implies) and
// stops where the engine refuses, so the counts are those of a real run.
// The events fed are written as the scenario's replay file.
type sim struct {
	t     *testing.T
	e     *Engine
	set   *decision.Set
	rec   *recorder
	now   time.Time
	lines []string
	// reached counts wrong-password requests that reached the PBX, by
	// account; refused counts requests the engine refused, by source.
	reached map[string]int
	refused map[string]int
	seq     int
}

func newSim(t *testing.T, cfgYAML string) *sim {
	t.Helper()
	cfg, err := config.Parse("config.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	set := decision.NewSet()
	rec := &recorder{}
	e, err := New(cfg, Options{Set: set, Apply: decision.Fanout{set, rec}, Now: func() time.Time { t.Fatal("engine read the wall clock"); return time.Time{} }})
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, e: e, set: set, rec: rec, now: t0, reached: map[string]int{}, refused: map[string]int{}}
}

func (s *sim) comment(format string, args ...any) {
	s.lines = append(s.lines, "# "+fmt.Sprintf(format, args...))
}

// feed checks ev and records its replay line.
func (s *sim) feed(kind string, ev event.Event) Verdict {
	b, err := json.Marshal(ev)
	if err != nil {
		s.t.Fatal(err)
	}
	s.lines = append(s.lines, `{"kind":"`+kind+`",`+string(b[1:]))
	return s.e.Check(context.Background(), ev)
}

func (s *sim) tick(d time.Duration) time.Time { s.now = s.now.Add(d); return s.now }

func meta(at time.Time, src, transport string) event.Meta {
	return event.Meta{Time: at, Source: netip.MustParseAddrPort(src), Transport: event.Transport(transport)}
}

// request sends one request and, when the engine passes it, the model
// PBX's final response (code) and the event it implies. It reports the
// verdict.
func (s *sim) request(src, transport string, sip event.SIP, code int) Verdict {
	s.seq++
	sip.CallID = fmt.Sprintf("c%d", s.seq)
	m := meta(s.tick(10*time.Millisecond), src, transport)
	v := s.feed("request", &event.Request{Meta: m, SIP: sip})
	if v.Action == Pass && sip.Method == "INVITE" {
		v = s.feed("call_attempt", &event.CallAttempt{Meta: m, SIP: sip, Account: sip.Account(), Destination: sip.RURIUser})
	}
	if v.Action != Pass {
		s.refused[src]++
		return v
	}
	resp := &event.Response{Meta: meta(s.tick(2*time.Millisecond), src, transport), SIP: sip, Code: code}
	if sip.Method == "REGISTER" && code == 200 {
		resp.Expires = 3600
	}
	s.feed("response", resp)
	switch d := event.Classify(resp).(type) {
	case *event.AuthFailure:
		s.reached[d.Account]++
		s.feed("auth_failure", d)
	case *event.Register:
		s.feed("register", d)
	case *event.CallEnded:
		s.feed("call_ended", d)
	}
	return v
}

// guess is a REGISTER with a wrong password for account.
func (s *sim) guess(src, transport, account string) Verdict {
	return s.request(src, transport, event.SIP{Method: "REGISTER", FromUser: account, ToUser: account,
		AuthUser: account, HasCredentials: true, UserAgent: "PolycomVVX-VVX_400-UA/5.9.0"}, 403)
}

// phone registers account as a phone does: challenged, then answered with
// the right password. It reports whether the engine let both through.
func (s *sim) phone(src, transport, account string) bool {
	sip := event.SIP{Method: "REGISTER", FromUser: account, ToUser: account, UserAgent: "Yealink SIP-T46S 66.86.0.15"}
	if s.request(src, transport, sip, 401).Action != Pass {
		return false
	}
	sip.HasCredentials, sip.AuthUser = true, account
	return s.request(src, transport, sip, 200).Action == Pass
}

// write stores the scenario as a data case, or checks that the committed
// one is what the scenario feeds.
func (s *sim) write(name, cfgYAML string) {
	s.t.Helper()
	dir := filepath.Join("testdata", name)
	s.t.Logf("failures reaching the PBX by account %v; refused requests by source %v; %d decisions", s.reached, s.refused, len(s.rec.got))
	events := []byte(strings.Join(s.lines, "\n") + "\n")
	if *gen {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfgYAML), 0o644); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), events, 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	if err != nil || !bytes.Equal(got, events) {
		s.t.Fatalf("testdata/%s/events.jsonl is not what the scenario feeds (err %v): run go test -run TestScenarios -gen, then -run TestData -update", name, err)
	}
}

const (
	attacker = "203.0.113.50:5060"
	udp      = "udp"
	tcp      = "tcp"
)

// The rows of the detection round-two table (slow guessing, spraying,
// probes, enumeration over methods, forged datagrams, identities) and the
// busy office, each with its goal. Each writes testdata/<name>/, replayed
// by TestData.
func TestScenarios(t *testing.T) {
	t.Run("slow_guess_one_account", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. One address (UDP) guesses one account, one try per 35 s, 8 tries:")
		s.comment("register_failure[0] (3 in 60 s) never trips; [1] (5 in 1 h) bans at the 5th failure,")
		s.comment("for 10 min only (unproven UDP source), and its counts stay so a later failure re-trips.")
		for range 8 {
			s.guess(attacker, udp, "1001")
			s.tick(35 * time.Second)
		}
		if n := s.reached["1001"]; n > 5 {
			t.Errorf("%d failures reached the PBX, want at most 5", n)
		}
		s.write("slow_guess_one_account", cfg)
	})

	t.Run("slow_guess_four_accounts", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. One address guesses 4 accounts, one try per 35 s each (20 tries):")
		s.comment("register_failure[2] (10 in 1 h, banmode ip) bans the address at the 10th failure.")
		for range 5 {
			for _, a := range []string{"1001", "1002", "1003", "1004"} {
				s.guess(attacker, udp, a)
				s.tick(35 * time.Second / 4)
			}
		}
		total := 0
		for _, n := range s.reached {
			total += n
		}
		if total > 10 {
			t.Errorf("%d failures reached the PBX, want at most 10", total)
		}
		s.write("slow_guess_four_accounts", cfg)
	})

	t.Run("busy_office", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. 20 phones behind one NAT (UDP), re-registering every 2 min; phone 2019's")
		s.comment("password changed and it retries every 30 s. The 19 others are never refused; 2019 is")
		s.comment("banned for its account (ip_account) within 5 failures; the office is never banned.")
		office := func(i int) string { return fmt.Sprintf("198.51.100.50:%d", 5060+i) }
		for i := range 20 {
			if !s.phone(office(i), udp, fmt.Sprintf("20%02d", i)) {
				t.Fatalf("phone %d refused at first registration", i)
			}
		}
		var bannedAt int
		for step := 1; step <= 60; step++ { // 30 minutes, 30 s apart
			s.tick(30 * time.Second)
			v := s.guess(office(19), udp, "2019")
			if v.Action != Pass && bannedAt == 0 {
				bannedAt = s.reached["2019"]
			}
			if step%4 == 0 {
				for i := range 19 {
					if !s.phone(office(i), udp, fmt.Sprintf("20%02d", i)) {
						t.Fatalf("phone %d refused at step %d", i, step)
					}
				}
			}
		}
		if bannedAt == 0 || bannedAt > 5 {
			t.Errorf("stale phone refused after %d failures, want a ban within 5", bannedAt)
		}
		for _, d := range s.rec.got {
			if d.Scope != decision.ScopeIPAccount || d.Account != "2019" {
				t.Errorf("unexpected decision %v", d)
			}
		}
		s.write("busy_office", cfg)
	})

	t.Run("password_spray", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. Five phones (1001-1005) registered from their usual addresses; 30 addresses")
		s.comment("try one password each, spread over the 5 accounts. Each account is locked at its 5th")
		s.comment("failing address; the 6th (new) address may try once and is banned for the account.")
		s.comment("The phones keep registering from their usual addresses, and 1001 from a new address")
		s.comment("with the right password passes at its first try.")
		home := func(i int) string { return fmt.Sprintf("198.51.100.%d:5060", 10+i) }
		for i := range 5 {
			s.phone(home(i), udp, fmt.Sprintf("100%d", i+1))
		}
		for i := range 30 {
			s.tick(2 * time.Second)
			s.guess(fmt.Sprintf("203.0.113.%d:5060", 100+i), udp, fmt.Sprintf("100%d", i%5+1))
		}
		for i := range 5 {
			s.tick(10 * time.Second)
			if !s.phone(home(i), udp, fmt.Sprintf("100%d", i+1)) {
				t.Errorf("phone 100%d refused from its usual address during the lock", i+1)
			}
		}
		if !s.phone("198.51.100.99:5060", udp, "1001") {
			t.Error("phone 1001 refused from a new address with the right password")
		}
		locks := 0
		for _, d := range s.rec.got {
			if d.Scope == decision.ScopeAccount {
				locks++
			}
		}
		if locks != 5 {
			t.Errorf("%d accounts locked, want 5", locks)
		}
		s.write("password_spray", cfg)
	})

	t.Run("spray_40x2", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. 40 addresses guess account 1001 twice each. The lock comes at the 5th failing")
		s.comment("address; then at most new_sources (5) failures from new addresses pass per 10 min, each")
		s.comment("banning its address for the account. The phone keeps registering from its usual address;")
		s.comment("once the budget refills (10 min later) it also registers from a new address.")
		s.phone("198.51.100.10:5060", udp, "1001")
		for round := range 2 {
			for i := range 40 {
				_ = round
				s.tick(time.Second)
				s.guess(fmt.Sprintf("203.0.113.%d:5060", 100+i), udp, "1001")
			}
		}
		if n := s.reached["1001"]; n > 20 {
			t.Errorf("%d failures reached the PBX, want at most 20", n)
		}
		if !s.phone("198.51.100.10:5060", udp, "1001") {
			t.Error("phone refused from its usual address")
		}
		s.tick(10 * time.Minute)
		if !s.phone("198.51.100.99:5060", udp, "1001") {
			t.Error("phone refused from a new address with the right password")
		}
		s.write("spray_40x2", cfg)
	})

	t.Run("unauthenticated_international_invites", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. An address that never registered sends 30 INVITEs without credentials to")
		s.comment("international numbers (the PBX would challenge them). Each is a probe, flagged for the")
		s.comment("store; the 3rd within 10 min bans the address (rule probe) and is dropped.")
		reached := 0
		for i := range 30 {
			s.tick(time.Second)
			v := s.request(attacker, udp, event.SIP{Method: "INVITE", FromUser: "1000", ToUser: fmt.Sprintf("0097259%06d", i),
				RURIUser: fmt.Sprintf("0097259%06d", i), UserAgent: "PolycomVVX-VVX_400-UA/5.9.0"}, 407)
			if v.Action == Pass {
				reached++
			}
		}
		if reached > 2 {
			t.Errorf("%d probes reached the PBX, want at most 2", reached)
		}
		s.write("unauthenticated_international_invites", cfg)
	})

	sweep := func(name, method string, code func(ext int) int, comment string) {
		t.Run(name, func(t *testing.T) {
			cfg := "# defaults\n"
			s := newSim(t, cfg)
			s.comment("%s", "defaults. "+comment)
			reached := 0
			for ext := 100; ext <= 200; ext++ {
				s.tick(40 * time.Millisecond) // with the 12 ms of request and response: 20 requests/s
				u := fmt.Sprint(ext)
				v := s.request(attacker, udp, event.SIP{Method: method, FromUser: u, ToUser: u, RURIUser: u, FromName: u,
					UserAgent: "Z 5.4.12 v2.10.20.4"}, code(ext))
				if v.Action == Pass {
					reached++
				}
			}
			if reached > 10 {
				t.Errorf("%d requests reached the PBX, want at most 10", reached)
			}
			s.write(name, cfg)
		})
	}
	exists := func(ok, missing int) func(int) int {
		return func(ext int) int {
			if ext%10 == 0 { // 100, 110, ... exist
				return ok
			}
			return missing
		}
	}
	sweep("svwar_register", "REGISTER", exists(401, 401), "svwar -m REGISTER at 20/s over 101 extensions; the PBX challenges every name. The 8th distinct user named without credentials (sweep_targets) bans and is dropped.")
	sweep("svwar_invite", "INVITE", exists(407, 404), "svwar -m INVITE at 20/s; the PBX challenges existing users (407) and answers 404 to the others. Three 404s to unauthenticated INVITEs are probes: the third bans; the sweep count would ban at the 8th.")
	sweep("svwar_options", "OPTIONS", exists(200, 404), "OPTIONS sweep at 20/s. From the 2nd distinct user each OPTIONS is flagged (recorded); the 8th bans.")

	t.Run("forged_datagram", func(t *testing.T) {
		cfg := "# defaults, with a honeypot account\nhoneypot: {accounts: [\"9999\"]}\n"
		s := newSim(t, cfg)
		s.comment("A forged UDP datagram with User-Agent friendly-scanner and the source of a trunk")
		s.comment("(198.51.100.200) is dropped, and nothing else happens: one datagram's source is unproven.")
		s.comment("A second forged one names a honeypot account: same. The trunk's traffic right after passes.")
		s.comment("The same scanner over TCP (a completed handshake) gets the full 24 h ban.")
		trunk := "198.51.100.200:5060"
		if v := s.request(trunk, udp, event.SIP{Method: "OPTIONS", FromUser: "100", ToUser: "100", RURIUser: "100", UserAgent: "friendly-scanner"}, 200); v.Action != Drop {
			t.Errorf("forged scanner datagram not dropped: %+v", v)
		}
		s.tick(time.Second)
		if v := s.request(trunk, udp, event.SIP{Method: "REGISTER", FromUser: "9999", ToUser: "9999", UserAgent: "Asterisk PBX 18.0"}, 401); v.Action != Drop {
			t.Errorf("forged honeypot datagram not dropped: %+v", v)
		}
		s.tick(time.Second)
		if v := s.request(trunk, udp, event.SIP{Method: "INVITE", FromUser: "trunk", ToUser: "1001", RURIUser: "1001",
			HasCredentials: true, AuthUser: "trunk", UserAgent: "Asterisk PBX 18.0"}, 200); v.Action != Pass {
			t.Errorf("trunk refused after forged datagrams: %+v", v)
		}
		s.request("203.0.113.77:40000", tcp, event.SIP{Method: "OPTIONS", FromUser: "100", ToUser: "100", RURIUser: "100", UserAgent: "friendly-scanner"}, 200)
		if len(s.rec.got) != 1 {
			t.Errorf("decisions %v, want one: the TCP scanner's", s.rec.got)
		}
		for _, d := range s.rec.got {
			if d.Prefix.Addr() != netip.MustParseAddr("203.0.113.77") || d.Unproven || d.Until.Sub(d.At) != 24*time.Hour {
				t.Errorf("decision %v: unproven %v, lasts %v", d, d.Unproven, d.Until.Sub(d.At))
			}
		}
		s.write("forged_datagram", cfg)
	})

	t.Run("one_identity", func(t *testing.T) {
		cfg := "# defaults\n"
		s := newSim(t, cfg)
		s.comment("defaults. An ip_account ban on 1001 (3 failures in 60 s) refuses every request from that")
		s.comment("address naming 1001 anywhere, however spelt: REGISTER To:1001 with digest username x,")
		s.comment("%s", "INVITE From:1001, %-escapes, NUL bytes, spaces. Other accounts pass.")
		for range 3 {
			s.guess(attacker, tcp, "1001")
			s.tick(10 * time.Second)
		}
		for _, sip := range []event.SIP{
			{Method: "REGISTER", FromUser: "x", ToUser: "1001", AuthUser: "x", HasCredentials: true},
			{Method: "INVITE", FromUser: "1001", ToUser: "0044201234567", RURIUser: "0044201234567"},
			{Method: "REGISTER", FromUser: "%31%30%30%31", ToUser: "%31%30%30%31"},
			{Method: "REGISTER", FromUser: "1001\x00", ToUser: " 1001 ", AuthUser: "1001\x00", HasCredentials: true},
		} {
			if v := s.request(attacker, tcp, sip, 403); v.Action != Reject {
				t.Errorf("%+v passed: %+v", sip, v)
			}
		}
		if v := s.request(attacker, tcp, event.SIP{Method: "REGISTER", FromUser: "1002", ToUser: "1002", AuthUser: "1002", HasCredentials: true}, 200); v.Action != Pass {
			t.Errorf("another account refused: %+v", v)
		}
		s.write("one_identity", cfg)
	})
}
