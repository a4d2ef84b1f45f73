package callpolicy

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

var t0 = time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC) // a Monday

func TestParseHours(t *testing.T) {
	cases := []struct {
		in       string
		from, to int
		bad      bool
	}{
		{"00:00-23:59", 0, 23*60 + 59, false},
		{"18:00-08:59", 18 * 60, 8*60 + 59, false},
		{" 09:00 - 17:30 ", 9 * 60, 17*60 + 30, false},
		{"9-17", 0, 0, true},
		{"24:00-01:00", 0, 0, true},
		{"09:60-10:00", 0, 0, true},
		{"09:0-10:00", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tc := range cases {
		f, to, err := parseHours(tc.in)
		if (err != nil) != tc.bad || !tc.bad && (f != tc.from || to != tc.to) {
			t.Errorf("parseHours(%q) = %d, %d, %v", tc.in, f, to, err)
		}
	}
}

func TestParseDays(t *testing.T) {
	bit := func(ds ...time.Weekday) uint8 {
		var m uint8
		for _, d := range ds {
			m |= 1 << uint(d)
		}
		return m
	}
	cases := []struct {
		in   string
		want uint8
		bad  bool
	}{
		{"mon-sun", bit(0, 1, 2, 3, 4, 5, 6), false},
		{"mon-fri", bit(1, 2, 3, 4, 5), false},
		{"sat,sun", bit(6, 0), false},
		{"fri-mon", bit(5, 6, 0, 1), false},
		{"Mon", bit(1), false},
		{"mon-", 0, true},
		{"monday", 0, true},
		{"", 0, true},
	}
	for _, tc := range cases {
		got, err := parseDays(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseDays(%q) = %07b, %v; want %07b", tc.in, got, err, tc.want)
		}
	}
}

// The window resets by time alone: calls age out second by second, and
// a gap longer than the window empties it.
func TestWindow(t *testing.T) {
	w := newWindow(time.Minute, 60)
	for i := range 5 {
		w.add(t0.Add(time.Duration(i)*10*time.Second), 1) // 0, 10, …, 40 s
	}
	for _, tc := range []struct {
		at   time.Duration
		want int64
	}{{40 * time.Second, 5}, {59 * time.Second, 5}, {60 * time.Second, 4}, {95 * time.Second, 1}, {100 * time.Second, 0}, {time.Hour, 0}} {
		if got := w.sum(t0.Add(tc.at)); got != tc.want {
			t.Errorf("sum at +%v = %d, want %d", tc.at, got, tc.want)
		}
	}
	w.add(t0, 1) // older than the window now: ignored
	if got := w.sum(t0.Add(time.Hour)); got != 0 {
		t.Errorf("an add older than the window counted: %d", got)
	}
}

func TestCounted(t *testing.T) {
	for code, want := range map[int]bool{100: false, 180: true, 183: true, 200: true, 401: false, 403: false, 407: false, 404: true, 486: true, 487: true, 503: true} {
		if Counted(code) != want {
			t.Errorf("Counted(%d) = %v", code, !want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	rule := func(r config.CallRule) Config {
		return Config{Policy: config.CallPolicy{DefaultCountry: "CN", Rules: []config.CallRule{r}}}
	}
	cases := []struct {
		name string
		c    Config
		o    Options
		want string
	}{
		{"country", Config{Policy: config.CallPolicy{DefaultCountry: "XX"}}, Options{}, "default_country"},
		{"destination", rule(config.CallRule{Name: "a", Action: "reject", Match: config.CallMatch{Destinations: []string{"bogus"}}}), Options{}, "destinations[0]"},
		{"hours", rule(config.CallRule{Name: "a", Action: "reject", Match: config.CallMatch{Hours: "9-17"}}), Options{}, "hours"},
		{"days", rule(config.CallRule{Name: "a", Action: "reject", Except: config.CallMatch{Days: "someday"}}), Options{}, "except.days"},
		{"spend", rule(config.CallRule{Name: "a", Block: config.CallLimits{SpendPerHour: "-1"}}), Options{}, "spend_per_hour"},
		{"spend without rates", rule(config.CallRule{Name: "a", Block: config.CallLimits{SpendPerDay: "10"}}), Options{}, "need call_policy.rates"},
		{"rates", Config{Policy: config.CallPolicy{DefaultCountry: "CN"}}, Options{Rates: []byte("rates: [{prefix: x}]")}, "call_policy.rates"},
		{"rates not read", Config{Policy: config.CallPolicy{DefaultCountry: "CN", Rates: "r.yaml"}}, Options{}, "pass its content"},
		{"secret", Config{Policy: config.CallPolicy{DefaultCountry: "CN"}}, Options{Secrets: map[string]string{"1001": "short"}}, "secret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.c, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Compile = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// attempt runs one call attempt through d.
func attempt(d *Detector, src string, account, dest string, now time.Time) detector.Verdict {
	s := &event.SIP{Method: "INVITE", CallID: "c", FromUser: account, AuthUser: account, HasCredentials: true, RURIUser: dest}
	in := &detector.Input{Kind: event.KindCallAttempt, Now: now, Src: netip.MustParseAddr(src), SIP: s,
		Account: detector.Normalize(account), Destination: dest}
	in.Names.Add(in.Account)
	var out detector.Out
	d.Request(&detector.Shared{}, in, &out)
	return out.V
}

// Lockdown is only flipped through the Switch (the operator): no account
// name in a request can turn it on, and while it is on every name the
// request uses must be allowed.
func TestLockdownSwitch(t *testing.T) {
	sw := new(Switch)
	d, err := Compile(Config{Policy: config.CallPolicy{DefaultCountry: "CN"}, Lockdown: config.Lockdown{AllowAccounts: []string{"2001"}}}, Options{Lock: sw})
	if err != nil {
		t.Fatal(err)
	}
	for _, acct := range []string{"lockdown", "2001", "1001", "*"} {
		if v := attempt(d, "192.0.2.1", acct, "13800138000", t0); v.Action != detector.Pass {
			t.Errorf("lockdown off: %q refused: %+v", acct, v)
		}
	}
	if sw.On() {
		t.Fatal("a request turned lockdown on")
	}
	sw.Set(true)
	if v := attempt(d, "192.0.2.1", "2001", "13800138000", t0); v.Action != detector.Pass {
		t.Errorf("2001 refused during lockdown: %+v", v)
	}
	if v := attempt(d, "192.0.2.1", "1001", "13800138000", t0); v.Action != detector.Reject || v.Policy != PolicyLockdown {
		t.Errorf("1001 during lockdown: %+v", v)
	}
}
