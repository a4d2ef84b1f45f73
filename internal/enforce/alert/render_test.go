package alert

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Text an attacker chose cannot format, link, mention or add lines.
func TestCleanNeutralisesMarkup(t *testing.T) {
	cases := []struct{ name, in string }{
		{"link", "[click](http://evil.example/x)"},
		{"image", "![x](http://evil.example/p.png)"},
		{"mention all", "@all 紧急 @13812345678"},
		{"wecom mention", "<@zhangsan> <font color=\"warning\">x</font>"},
		{"heading and newline", "ua\n# FAKE ALERT: all clear\n> quoted"},
		{"emphasis and code", "**bold** _it_ `code` ~~s~~"},
		{"autolink", "see https://evil.example"},
		{"bidi and zero width", "abc\u202edef\u200bghi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := clean(tc.in)
			if strings.ContainsAny(got, "[]()<>@#*_`~\n\r/!\u202e\u200b") || strings.Contains(got, "://") {
				t.Errorf("clean(%q) = %q still carries markup", tc.in, got)
			}
		})
	}
	if got := clean(strings.Repeat("x", 500)); len([]rune(got)) > maxField+1 {
		t.Errorf("not capped: %d runes", len([]rune(got)))
	}
	if got := clean("138123456789"); strings.Contains(got, "123456") {
		t.Errorf("phone number not masked: %q", got)
	}
}

func TestRenderLanguages(t *testing.T) {
	a := Alert{Kind: KindBlockedCall, Time: t0, Addr: netip.MustParseAddr("203.0.113.9"), Account: "1001",
		Destination: "0085298765432", Rule: "call_policy", Reason: "premium prefix"}
	m := &Message{Kind: a.Kind, Severity: Warning, Count: 1, Alerts: []Alert{a}, Since: t0, Until: t0}
	for _, tc := range []struct {
		lang string
		want []string
	}{
		{"en", []string{"WARNING Call blocked", "Blocked a call from account 1001 to 008＊＊＊＊＊＊5432", "source 203.0.113.9", "Node"}},
		{"zh-CN", []string{"警告 呼叫已拦截", "已拦截账号 1001 呼叫 008＊＊＊＊＊＊5432", "来源 203.0.113.9", "节点"}},
	} {
		r := &renderer{lang: tc.lang, markdown: true, node: "edge-1", loc: time.UTC}
		body := r.body(m)
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s body lacks %q:\n%s", tc.lang, w, body)
			}
		}
		if strings.Contains(body, "98765432") {
			t.Errorf("%s: number not masked:\n%s", tc.lang, body)
		}
	}
	sum := &Message{Kind: KindBan, Severity: Warning, Count: 1000, Alerts: []Alert{banFrom(1), banFrom(2)},
		Rules: map[string]int{"scanner": 900, "flood": 100}, Since: t0, Until: t0.Add(time.Minute)}
	r := &renderer{lang: "zh-CN", node: "edge-1", loc: time.UTC}
	body := r.body(sum)
	for _, w := range []string{"×1000", "共 1000 条", "scanner 900, flood 100", "封禁 198.51.0.1"} {
		if !strings.Contains(body, w) {
			t.Errorf("summary lacks %q:\n%s", w, body)
		}
	}
}

// tollguard's own words stay readable and still cannot link or mention.
func TestOwnWords(t *testing.T) {
	if got := own("register_failure[0]"); got != "register_failure[0]" {
		t.Errorf("own(rule) = %q", got)
	}
	if got := own("udp://10.0.0.5:5080"); got != "udp://10.0.0.5:5080" {
		t.Errorf("own(target) = %q", got)
	}
	if got := own("x](http://evil.example) <@all> @all\n# h"); strings.ContainsAny(got, "()<>@#\n") {
		t.Errorf("own kept markup: %q", got)
	}
}

func TestTitleResolved(t *testing.T) {
	r := &renderer{lang: "zh-CN"}
	down := Alert{Kind: KindUpstreamDown, Target: "udp://10.0.0.5:5080"}
	up := down
	up.Resolved = true
	if got := r.title(&Message{Kind: down.Kind, Severity: Critical, Count: 1, Alerts: []Alert{down}}); got != "[tollguard] 严重 PBX 无响应" {
		t.Errorf("down: %q", got)
	}
	if got := r.title(&Message{Kind: up.Kind, Severity: Critical, Count: 1, Alerts: []Alert{up}}); got != "[tollguard] PBX 已恢复" {
		t.Errorf("resolved: %q", got)
	}
	if got := r.describe(&up); got != "PBX udp://10.0.0.5:5080 已恢复" {
		t.Errorf("describe resolved: %q", got)
	}
}
