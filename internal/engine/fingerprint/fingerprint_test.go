package fingerprint

import (
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/event"
)

func embeddedMatcher(t testing.TB) *Matcher {
	t.Helper()
	m, err := Compile("embedded", Embedded())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMatchEmbedded(t *testing.T) {
	m := embeddedMatcher(t)
	cases := []struct {
		name       string
		sip        event.SIP
		wantStrong string
		wantScore  int
	}{
		{"sipvicious default UA", event.SIP{Method: "OPTIONS", UserAgent: "friendly-scanner"}, "sipvicious-ua", 0},
		{"case folded", event.SIP{Method: "REGISTER", UserAgent: "FRIENDLY-Scanner"}, "sipvicious-ua", 0},
		{"sippts", event.SIP{Method: "REGISTER", UserAgent: "pplsip"}, "sippts", 0},
		{"sipcli versioned", event.SIP{Method: "INVITE", UserAgent: "sipcli/v1.8"}, "sipcli", 0},
		{"vax", event.SIP{Method: "REGISTER", UserAgent: "VaxSIPUserAgent/3.1"}, "vaxsip", 0},
		{"nmap UA", event.SIP{Method: "OPTIONS", UserAgent: "Nmap NSE"}, "nmap-nse", 0},
		{"nmap probe without UA", event.SIP{Method: "OPTIONS", RURIUser: "nm", FromUser: "nm", ToUser: "nm2"}, "nmap-options-probe", 0},
		{"sipvicious display name", event.SIP{Method: "OPTIONS", FromName: "sipvicious", UserAgent: "Yealink SIP-T46S"}, "sipvicious-from-name", 0},
		{"empty UA is not hostile", event.SIP{Method: "REGISTER", FromUser: "1001", ToUser: "1001"}, "", 0},
		{"real phone", event.SIP{Method: "REGISTER", UserAgent: "Yealink SIP-T46S 66.86.0.15", FromUser: "1001"}, "", 0},
		{"real softphone", event.SIP{Method: "INVITE", UserAgent: "Zoiper rv2.10.20.4", FromUser: "1002"}, "", 0},
		{"freeswitch trunk", event.SIP{Method: "OPTIONS", UserAgent: "FreeSWITCH-mod_sofia/1.10.12"}, "", 0},
		{"real asterisk is weak only", event.SIP{Method: "OPTIONS", UserAgent: "Asterisk PBX"}, "", 20},
		{"portsip sdk is weak only", event.SIP{Method: "INVITE", UserAgent: "PortSIP VoIP SDK 11.2"}, "", 40},
		{"two weak marks add up", event.SIP{Method: "OPTIONS", UserAgent: "PortSIP VoIP SDK 11.2", FromUser: "voipgw"}, "", 70},
		{"OPTIONS to nm is not a method-less match", event.SIP{Method: "INVITE", RURIUser: "nm"}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := m.Match(&tc.sip)
			if r.Strong != tc.wantStrong {
				t.Errorf("Strong = %q, want %q", r.Strong, tc.wantStrong)
			}
			if got := m.Score(r.Weak); got != tc.wantScore {
				t.Errorf("score = %d (%v), want %d", got, m.Names(r.Weak), tc.wantScore)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown key", "fingerprints:\n- {name: a, strong: true, source: s, when: [{field: user_agent, exact: x}], bogus: 1}\n", "bogus"},
		{"no source", "fingerprints:\n- {name: a, strong: true, when: [{field: user_agent, exact: x}]}\n", "source is empty"},
		{"unknown field", "fingerprints:\n- {name: a, strong: true, source: s, when: [{field: contact, exact: x}]}\n", "unknown field"},
		{"two matchers", "fingerprints:\n- {name: a, strong: true, source: s, when: [{field: user_agent, exact: x, prefix: y}]}\n", "exactly one"},
		{"empty pattern", "fingerprints:\n- {name: a, strong: true, source: s, when: [{field: user_agent, exact: \"\"}]}\n", "exactly one"},
		{"weak without score", "fingerprints:\n- {name: a, source: s, when: [{field: user_agent, exact: x}]}\n", "score"},
		{"strong with score", "fingerprints:\n- {name: a, strong: true, score: 5, source: s, when: [{field: user_agent, exact: x}]}\n", "no score"},
		{"duplicate", "fingerprints:\n- {name: a, strong: true, source: s, when: [{field: user_agent, exact: x}]}\n- {name: a, strong: true, source: s, when: [{field: user_agent, exact: y}]}\n", "duplicate"},
		{"empty list", "fingerprints: []\n", "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile("f.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestReplacementList(t *testing.T) {
	m, err := Compile("mine.yaml", []byte("fingerprints:\n- {name: evil, strong: true, source: ours, when: [{field: user_agent, prefix: EvilBot}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := m.Match(&event.SIP{UserAgent: "evilbot/1"}); r.Strong != "evil" {
		t.Fatalf("custom entry did not match: %+v", r)
	}
	if r := m.Match(&event.SIP{UserAgent: "friendly-scanner"}); r.Strong != "" {
		t.Fatalf("a replacement list still matched an embedded entry: %+v", r)
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	m := embeddedMatcher(t)
	s := &event.SIP{Method: "REGISTER", UserAgent: "Yealink SIP-T46S 66.86.0.15", FromUser: "1001", ToUser: "1001", RURIUser: ""}
	if n := testing.AllocsPerRun(100, func() { m.Match(s) }); n != 0 {
		t.Fatalf("Match allocated %v times", n)
	}
}

func FuzzMatch(f *testing.F) {
	m := embeddedMatcher(f)
	f.Add("REGISTER", "friendly-scanner", "", "100", "100", "")
	f.Add("OPTIONS", "", "sipvicious", "100", "100", "100")
	f.Add("OPTIONS", "Nmap NSE", "", "nm", "nm2", "nm")
	f.Add("INVITE", "Yealink SIP-T46S", "Alice", "1001", "0044123", "0044123")
	f.Fuzz(func(t *testing.T, method, ua, fromName, fromUser, toUser, ruri string) {
		s := event.SIP{Method: method, UserAgent: ua, FromName: fromName, FromUser: fromUser, ToUser: toUser, RURIUser: ruri}
		r := m.Match(&s)
		up := event.SIP{Method: strings.ToUpper(method), UserAgent: strings.ToUpper(ua), FromName: strings.ToUpper(fromName),
			FromUser: strings.ToUpper(fromUser), ToUser: strings.ToUpper(toUser), RURIUser: strings.ToUpper(ruri)}
		if isASCII(method+ua+fromName+fromUser+toUser+ruri) && m.Match(&up) != r {
			t.Fatalf("match depends on ASCII case: %+v vs %+v", r, m.Match(&up))
		}
		if (r.Strong != "" || r.Weak != 0) && ua == "" && fromName == "" && fromUser == "" && toUser == "" && ruri == "" {
			t.Fatalf("a request with only a method matched: %+v", r)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func BenchmarkMatch(b *testing.B) {
	m := embeddedMatcher(b)
	cases := map[string]*event.SIP{
		"phone":   {Method: "REGISTER", UserAgent: "Yealink SIP-T46S 66.86.0.15", FromUser: "1001", ToUser: "1001"},
		"scanner": {Method: "OPTIONS", UserAgent: "friendly-scanner", FromUser: "100", ToUser: "100", RURIUser: "100"},
		"no-ua":   {Method: "REGISTER", FromUser: "1001", ToUser: "1001"},
	}
	for name, s := range cases {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(s)
			}
		})
	}
}
