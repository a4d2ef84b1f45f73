package forensics

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// attack builds a recorded night: a scanner enumerating accounts, a brute
// forcer that guesses 1001's password and calls abroad, a distributed guess
// on 1004, and legitimate phones (one with a typo) around them.
func attack() []event.Event {
	at := func(sec int, src string) event.Meta {
		return event.Meta{Time: t0.Add(time.Duration(sec) * time.Second), Source: netip.MustParseAddrPort(src), Transport: "udp"}
	}
	var evs []event.Event
	for i := range 50 {
		acct := fmt.Sprint(1000 + i)
		evs = append(evs, &event.AuthFailure{Meta: at(i, "203.0.113.10:5060"), SIP: event.SIP{Method: "REGISTER", UserAgent: "friendly-scanner"}, Account: acct, Code: 403})
	}
	evs = append(evs, &event.Ban{Meta: at(51, "203.0.113.10:5060"), Scope: "ip", Value: "203.0.113.10", Rule: "scanner", Until: t0.Add(24 * time.Hour)})
	for i := range 30 {
		evs = append(evs, &event.AuthFailure{Meta: at(100+i, "203.0.113.20:5070"), SIP: event.SIP{Method: "REGISTER", UserAgent: "PolycomVVX"}, Account: "1001", Code: 401})
	}
	evs = append(evs,
		&event.Register{Meta: at(140, "203.0.113.20:5070"), Account: "1001", Expires: 60},
		&event.CallAttempt{Meta: at(150, "203.0.113.20:5070"), SIP: event.SIP{CallID: "x1"}, Account: "1001", Destination: "00972599123456"},
		&event.CallAnswered{Meta: at(155, "203.0.113.20:5070"), SIP: event.SIP{CallID: "x1"}, Account: "1001", Destination: "00972599123456"},
		&event.CallEnded{Meta: at(755, "203.0.113.20:5070"), SIP: event.SIP{CallID: "x1"}, Account: "1001", Destination: "00972599123456", Duration: 605 * time.Second, Billsec: 600 * time.Second, Cause: "bye"},
		// A phone with one typo, then its good password: not compromised.
		&event.AuthFailure{Meta: at(200, "192.0.2.5:5060"), Account: "1002", Code: 401},
		&event.Register{Meta: at(201, "192.0.2.5:5060"), Account: "1002"},
		// A normal local call.
		&event.Register{Meta: at(300, "192.0.2.6:5060"), Account: "1003"},
		&event.CallAttempt{Meta: at(310, "192.0.2.6:5060"), Account: "1003", Destination: "13812345678"},
		&event.CallAnswered{Meta: at(312, "192.0.2.6:5060"), Account: "1003", Destination: "13812345678"},
	)
	for i := range 10 {
		evs = append(evs, &event.AuthFailure{Meta: at(400+i, fmt.Sprintf("198.51.100.%d:5060", 1+i%5)), Account: "1004", Code: 403})
	}
	// 1004's own phone registers from its usual address: not compromised.
	evs = append(evs, &event.Register{Meta: at(500, "192.0.2.7:5060"), Account: "1004"})
	return evs
}

// recorded stores the attack and reads it back, as investigate does.
func recorded(t *testing.T) []store.Record {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, config.Default().Store, t.TempDir(), store.Options{Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ev := range attack() {
		s.Record(ev)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Query(ctx, store.Filter{Since: t0, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestInvestigateAttack(t *testing.T) {
	rep := Analyze(recorded(t), Options{})
	if rep.Events != len(attack()) {
		t.Errorf("Events = %d, want %d", rep.Events, len(attack()))
	}
	var srcs []string
	for _, s := range rep.Sources {
		srcs = append(srcs, fmt.Sprintf("%s:%d/%d/%d", s.IP, s.Failures, s.Bans, s.Accounts))
	}
	wantSrcs := "203.0.113.10:50/1/50 203.0.113.20:30/0/1 198.51.100.1:2/0/1 198.51.100.2:2/0/1 198.51.100.3:2/0/1 198.51.100.4:2/0/1 198.51.100.5:2/0/1 192.0.2.5:1/0/1"
	if got := strings.Join(srcs, " "); got != wantSrcs {
		t.Errorf("sources:\n got %s\nwant %s", got, wantSrcs)
	}
	if ua := rep.Sources[0].UserAgents; len(ua) != 1 || ua[0] != "friendly-scanner" {
		t.Errorf("scanner user agents = %q", ua)
	}
	if a := rep.Accounts; len(a) < 2 || a[0] != (Account{"1001", 31, 2}) || a[1] != (Account{"1004", 11, 6}) {
		t.Errorf("accounts = %+v", a[:min(len(a), 3)])
	}
	want := []Compromise{{Account: "1001", IP: netip.MustParseAddr("203.0.113.20"), At: t0.Add(140 * time.Second), How: "register", Failures: 31}}
	if len(rep.Compromised) != 1 || rep.Compromised[0] != want[0] {
		t.Errorf("compromised = %+v, want %+v", rep.Compromised, want)
	}
	wantDest := Destination{Destination: "00972599123456", Prefix: "00", Attempts: 1, Answered: 1, Billsec: 600 * time.Second, Accounts: []string{"1001"}}
	if len(rep.Destinations) != 1 || fmt.Sprint(rep.Destinations[0]) != fmt.Sprint(wantDest) {
		t.Errorf("destinations = %+v, want %+v", rep.Destinations, wantDest)
	}

	rep.Mask()
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, s := range []string{"LIKELY COMPROMISED", `"1001"`, "203.0.113.20", `"009*******3456"`, "ban ip 203.0.113.10 (rule scanner"} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "00972599123456") {
		t.Errorf("masked report shows the full number:\n%s", out)
	}
}

func TestExpensivePrefix(t *testing.T) {
	tests := []struct{ name, dest, want string }{
		{"international 00", "00441234567", "00"},
		{"plus", "+441234567", "+"},
		{"nanp 011 with outside line", "9011441234", "9011"},
		{"premium", "9001234567", "900"},
		{"nanp premium", "19005551234", "1900"},
		{"local mobile", "13812345678", ""},
		{"extension", "1001", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expensivePrefix(tt.dest, DefaultExpensivePrefixes); got != tt.want {
				t.Errorf("expensivePrefix(%q) = %q, want %q", tt.dest, got, tt.want)
			}
		})
	}
}
