package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type want struct {
	sev  Severity
	rule string
	at   string // file:line
}

func check(t *testing.T, dir string, o Options, wants []want) *Report {
	t.Helper()
	r, err := Run(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, fmt.Sprintf("%s %s %s:%d", f.Severity, f.Rule, f.File, f.Line))
	}
	var exp []string
	for _, w := range wants {
		exp = append(exp, fmt.Sprintf("%s %s %s", w.sev, w.rule, w.at))
	}
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	for _, f := range r.Findings {
		if f.Why == "" || f.Fix == "" || f.Message == "" || f.Subject == "" {
			t.Errorf("finding %s lacks text: %+v", f.Rule, f)
		}
	}
	return r
}

var guard = []netip.Addr{netip.MustParseAddr("192.168.42.42")}

// The flawed tree is vanilla-like with the holes operators leave, and the
// tricks that hide them from a reader: a default_password reset inside an
// XML comment, a command disabled by renaming, $${var} set after use,
// auth-calls set twice (FALSE last), "Yes", apply-inbound-acl cleared by
// "none", and the guard inside a register ACL through a /32 that beats
// the list's deny of its /24.
func TestFlawedTree(t *testing.T) {
	r := check(t, "testdata/flawed", Options{Guard: guard}, []want{
		{Critical, "default-password", "directory/default/1000.xml:4"},
		{Critical, "empty-password", "directory/default/1002.xml:2"},
		{Critical, "external-context", "sip_profiles/external.xml:1"},
		{Critical, "internal-auth-calls", "sip_profiles/internal-ipv6.xml:4"},
		{Critical, "guard-in-acl", "sip_profiles/internal.xml:7"},
		{Critical, "internal-auth-calls", "sip_profiles/internal.xml:9"},
		{Critical, "accept-blind-auth", "sip_profiles/internal.xml:10"},
		{Critical, "default-password", "vars.xml:3"},
		{High, "esl-exposed", "autoload_configs/event_socket.conf.xml:4"},
		{High, "esl-password", "autoload_configs/event_socket.conf.xml:6"},
		{High, "toll-allow-international", "directory/default/1000.xml:8"},
		{High, "weak-password", "directory/default/1001.xml:4"},
		{High, "weak-password", "directory/default/1003.xml:4"},
		{High, "external-inbound-acl", "sip_profiles/external.xml:1"},
		{High, "acl-broad", "sip_profiles/internal.xml:7"},
		{High, "proxy-acl-broad", "sip_profiles/internal.xml:8"},
		{Medium, "vm-password-extension", "directory/default/1000.xml:5"},
		{Medium, "sip-force-contact", "directory/default/1002.xml:5"},
		{Low, "require-secure-rtp", "sip_profiles/internal.xml:11"},
	})
	for _, f := range r.Findings {
		if f.Rule == "default-password" && f.File == "vars.xml" && !strings.Contains(f.Message, "inside an XML comment") {
			t.Errorf("the comment trick is not explained: %q", f.Message)
		}
	}
	// Without the guard's address the guard-specific finding goes, the rest stays.
	r2, err := Run("testdata/flawed", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r2.Findings) != len(r.Findings)-1 {
		t.Errorf("without a guard: %d findings, want %d", len(r2.Findings), len(r.Findings)-1)
	}
}

// The hardened tree uses freeswitch.xml and holds tricks that must not
// raise findings: XX-PRE-PROCESS, a <!--# block, a param inside an XML
// comment, auth-calls false then true, a proxy ACL of exactly the guard
// (host/mask form), an event socket on :: behind a narrow ACL.
func TestHardenedTree(t *testing.T) {
	check(t, "testdata/hardened", Options{Guard: []netip.Addr{netip.MustParseAddr("10.0.0.2")}}, nil)
	// A guard in the office range (the deny /32 removed) would be trusted.
	r, err := Run("testdata/hardened", Options{Guard: []netip.Addr{netip.MustParseAddr("10.0.0.3")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Rule != "proxy-acl-broad" {
		t.Errorf("guard 10.0.0.3: %+v", r.Findings)
	}
}

// The example conf tree shipped for operators passes with the guard on
// loopback, as examples/tollguard.yaml's upstream puts it.
func TestExampleTreePasses(t *testing.T) {
	r := check(t, "../../../examples/freeswitch", Options{Guard: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}, nil)
	if n := r.AtLeast(Medium); n != 0 {
		t.Errorf("%d findings at or above medium", n)
	}
	if len(r.Files) < 8 {
		t.Errorf("read only %v", r.Files)
	}
}

// tree writes files under a temp dir and returns it.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func profile(name string, params ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<profile name=%q>\n<settings>\n", name)
	for i := 0; i+1 < len(params); i += 2 {
		fmt.Fprintf(&b, "<param name=%q value=%q/>\n", params[i], params[i+1])
	}
	b.WriteString("</settings>\n</profile>\n")
	return b.String()
}

func rules(r *Report) string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Rule)
	}
	return strings.Join(out, ",")
}

// Each case is a way an operator (or an attacker with write access to one
// included file) might hide a hole; FreeSWITCH still honours it.
func TestTricks(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		guard string
		want  string
	}{
		{"multi-line XML comment does not stop a set", map[string]string{
			"vars.xml": "<include>\n<X-PRE-PROCESS cmd=\"set\" data=\"default_password=S7r#ngPass\"/>\n<!--\n<X-PRE-PROCESS cmd=\"set\" data=\"default_password=1234\"/>\n-->\n</include>\n",
		}, "", "default-password"},
		{"lower-case command, spaces around =", map[string]string{
			"vars.xml":                  "<x-pre-process cmd=\"SET\" data=\"ac = TRUE\"/>\n",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "$${ac}"),
		}, "", ""},
		{"include glob from a nested file, relative path", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": "<X-PRE-PROCESS cmd=\"include\" data=\"more/*.xml\"/>\n",
			"sip_profiles/more/a.xml":   profile("internal-a", "auth-calls", "0"),
		}, "", "internal-auth-calls"},
		{"numeric true", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "1", "accept-blind-reg", "2"),
		}, "", "accept-blind-reg"},
		{"unknown word is false", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "sure"),
		}, "", "internal-auth-calls"},
		{"param name case", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "AUTH-CALLS", "on", "Accept-Blind-Auth", "enabled"),
		}, "", "accept-blind-auth"},
		{"guard through loopback.auto", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "true", "apply-inbound-acl", "loopback.auto"),
		}, "127.0.0.1", "guard-in-acl"},
		{"guard through an inline CIDR list", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "true", "apply-register-acl", "192.0.2.0/24,10.9.0.0/16"),
		}, "10.9.8.7", "guard-in-acl"},
		{"guard through rfc1918.auto with a pass context", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "true", "apply-inbound-acl", "rfc1918.auto:default"),
		}, "10.0.0.2", "guard-in-acl,acl-broad"},
		{"guard likely in localnet.auto", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "true", "apply-inbound-acl", "localnet.auto"),
		}, "192.168.1.5", "guard-in-acl"},
		{"list without default is allow", map[string]string{
			"vars.xml":                      "",
			"autoload_configs/acl.conf.xml": "<configuration name=\"acl.conf\"><network-lists><list name=\"trunks\"><node type=\"allow\" cidr=\"198.51.100.1/32\"/></list></network-lists></configuration>\n",
			"sip_profiles/external.xml":     profile("external", "context", "public", "apply-inbound-acl", "trunks"),
		}, "", "acl-broad"},
		{"external context DEFAULT is not default", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/external.xml": profile("external", "context", "Default", "apply-inbound-acl", "loopback.auto"),
		}, "", ""},
		{"external context internal", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/external.xml": profile("external", "context", "internal", "apply-inbound-acl", "loopback.auto"),
		}, "", "external-context"},
		{"proxy ACL of the guard and one more host", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "true", "apply-proxy-acl", "10.0.0.2/32,10.0.0.3/32"),
		}, "10.0.0.2", "proxy-acl-broad"},
		{"event socket password absent is ClueCon", map[string]string{
			"vars.xml":                               "",
			"autoload_configs/event_socket.conf.xml": "<configuration name=\"event_socket.conf\"><settings><param name=\"listen-ip\" value=\"127.0.0.1\"/></settings></configuration>\n",
		}, "", "esl-password"},
		{"event socket on :: with the default ACL is closed", map[string]string{
			"vars.xml":                               "",
			"autoload_configs/event_socket.conf.xml": "<configuration name=\"event_socket.conf\"><settings><param name=\"listen-ip\" value=\"::\"/><param name=\"password\" value=\"x8#Kd93mQ!zz\"/></settings></configuration>\n",
		}, "", ""},
		{"user password set twice, last wins", map[string]string{
			"vars.xml":              "",
			"directory/default.xml": "<domain name=\"d\"><user id=\"7\"><params><param name=\"password\" value=\"Str0ng!Pass\"/><param name=\"PASSWORD\" value=\"1234\"/></params></user></domain>\n",
		}, "", "default-password"},
		{"empty password refused by allow-empty-password on the domain", map[string]string{
			"vars.xml":              "",
			"directory/default.xml": "<domain name=\"d\"><params><param name=\"allow-empty-password\" value=\"false\"/></params><users><user id=\"7\"/></users></domain>\n",
		}, "", ""},
		{"strength counts classes", map[string]string{
			"vars.xml":              "",
			"directory/default.xml": "<domain name=\"d\"><user id=\"7\"><params><param name=\"password\" value=\"abcdef12\"/></params></user></domain>\n",
		}, "", "weak-password"},
		{"sip-force-contact 2.0 keeps the path", map[string]string{
			"vars.xml":              "",
			"directory/default.xml": "<domain name=\"d\"><user id=\"7\"><params><param name=\"password\" value=\"Str0ng!Pass\"/><param name=\"sip-force-contact\" value=\"NDLB-connectile-dysfunction-2.0\"/></params></user></domain>\n",
		}, "", ""},
		{"guard in a domain list through a user's cidr", map[string]string{
			"vars.xml":                      "<X-PRE-PROCESS cmd=\"set\" data=\"domain=d\"/>\n",
			"autoload_configs/acl.conf.xml": "<configuration name=\"acl.conf\"><network-lists><list name=\"domains\" default=\"deny\"><node type=\"allow\" domain=\"$${domain}\"/></list></network-lists></configuration>\n",
			"sip_profiles/internal.xml":     profile("internal", "auth-calls", "true", "apply-inbound-acl", "domains"),
			"directory/default.xml":         "<domain name=\"$${domain}\"><user id=\"pbx2\" cidr=\"10.0.0.0/24\"><params><param name=\"password\" value=\"Str0ng!Pass\"/></params></user></domain>\n",
		}, "10.0.0.2", "guard-in-acl"},
		{"disable-rtp-auto-adjust", map[string]string{
			"vars.xml":                  "",
			"sip_profiles/internal.xml": profile("internal", "auth-calls", "true", "disable-rtp-auto-adjust", "true"),
		}, "", "rtp-auto-adjust-off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{}
			if tc.guard != "" {
				o.Guard = []netip.Addr{netip.MustParseAddr(tc.guard)}
			}
			r, err := Run(tree(t, tc.files), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := rules(r); got != tc.want {
				t.Errorf("rules %q, want %q\n%+v", got, tc.want, r.Findings)
			}
		})
	}
}

// Hostile trees end in a clear error, quickly, never a crash.
func TestHostileTrees(t *testing.T) {
	big := strings.Repeat("x", 60000)
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
	}{
		{"include loop", func(t *testing.T) string {
			return tree(t, map[string]string{
				"vars.xml": "<X-PRE-PROCESS cmd=\"include\" data=\"a.xml\"/>\n",
				"a.xml":    "<X-PRE-PROCESS cmd=\"include\" data=\"b.xml\"/>\n",
				"b.xml":    "<X-PRE-PROCESS cmd=\"include\" data=\"a.xml\"/>\n",
			})
		}, "b.xml:1: include loop: vars.xml → a.xml → b.xml → a.xml"},
		{"self include", func(t *testing.T) string {
			return tree(t, map[string]string{"freeswitch.xml": "<document>\n<!-- <X-PRE-PROCESS cmd=\"include\" data=\"*.xml\"/> -->\n</document>\n"})
		}, "include loop"},
		{"glob of thousands", func(t *testing.T) string {
			dir := tree(t, map[string]string{"vars.xml": "<X-PRE-PROCESS cmd=\"include\" data=\"many/*.xml\"/>\n"})
			os.Mkdir(filepath.Join(dir, "many"), 0o755)
			for i := range 1001 {
				os.WriteFile(filepath.Join(dir, "many", fmt.Sprintf("%d.xml", i)), nil, 0o644)
			}
			return dir
		}, `vars.xml:1: include "many/*.xml" matches 1001 files, over the limit of 1000`},
		{"huge file", func(t *testing.T) string {
			dir := tree(t, map[string]string{"vars.xml": "<X-PRE-PROCESS cmd=\"include\" data=\"huge.xml\"/>\n"})
			f, _ := os.Create(filepath.Join(dir, "huge.xml"))
			f.Truncate(maxFileSize + 1)
			f.Close()
			return dir
		}, "huge.xml is 8388609 bytes, over the 8 MiB limit"},
		{"symlink out of the tree", func(t *testing.T) string {
			outside := tree(t, map[string]string{"secret.xml": "<x/>\n"})
			dir := tree(t, map[string]string{"vars.xml": "<X-PRE-PROCESS cmd=\"include\" data=\"link.xml\"/>\n"})
			if err := os.Symlink(filepath.Join(outside, "secret.xml"), filepath.Join(dir, "link.xml")); err != nil {
				t.Skip(err)
			}
			return dir
		}, "link.xml resolves to"},
		{"absolute include out of the tree", func(t *testing.T) string {
			return tree(t, map[string]string{"vars.xml": "<X-PRE-PROCESS cmd=\"include\" data=\"/etc/host*\"/>\n"})
		}, "outside the audited directory"},
		{"malformed XML", func(t *testing.T) string {
			return tree(t, map[string]string{"vars.xml": "", "sip_profiles/internal.xml": "<profile name=\"internal\">\n<settings>\n<param name=\"a\" value=\"b\"\n</settings>\n</profile>\n"})
		}, "sip_profiles/internal.xml:"},
		{"unclosed element", func(t *testing.T) string {
			return tree(t, map[string]string{"vars.xml": "", "sip_profiles/internal.xml": "<profile name=\"internal\">\n<settings>\n"})
		}, "the open element is <settings> from sip_profiles/internal.xml:2"},
		{"deep nesting", func(t *testing.T) string {
			return tree(t, map[string]string{"vars.xml": "", "directory/x.xml": strings.Repeat("<a>\n", 5000) + strings.Repeat("</a>\n", 5000)})
		}, "directory/x.xml:999: XML elements nested deeper than 1000"},
		{"long line", func(t *testing.T) string {
			return tree(t, map[string]string{"vars.xml": strings.Repeat("a", maxLineBytes+1) + "\n"})
		}, "vars.xml: a line longer than 64 KiB"},
		{"expansion bomb", func(t *testing.T) string {
			line := strings.Repeat("$${b}", 1000) + "\n"
			return tree(t, map[string]string{"vars.xml": "<X-PRE-PROCESS cmd=\"set\" data=\"b=" + big + "\"/>\n" + strings.Repeat(line, 600)})
		}, "the preprocessed configuration exceeds 64 MiB"},
		{"not a conf dir", func(t *testing.T) string { return t.TempDir() }, "holds neither freeswitch.xml nor vars.xml"},
		{"missing dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Run(tc.setup(t), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func TestACLLongestPrefixWins(t *testing.T) {
	l := &ACL{Allow: true, Nodes: []aclNode{
		{prefix: netip.MustParsePrefix("192.168.42.0/24")},
		{prefix: netip.MustParsePrefix("192.168.42.42/32"), allow: true},
		{prefix: netip.MustParsePrefix("10.0.0.0/8"), allow: true},
		{prefix: netip.MustParsePrefix("10.0.0.0/8")}, // equal length: the first in the XML wins
	}}
	cases := map[string]bool{"192.168.42.42": true, "192.168.42.41": false, "8.8.8.8": true, "10.1.2.3": true, "::ffff:192.168.42.42": true}
	for a, want := range cases {
		if got := l.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: %v, want %v", a, got, want)
		}
	}
}

func TestSwitchTrue(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "TRUE": true, "Yes": true, "on": true, "t": true, "enabled": true, "active": true, "allow": true, "1": true, "-1": true, "0": false, "false": false, "": false, "yes please": false} {
		if switchTrue(v) != want {
			t.Errorf("switchTrue(%q) != %v", v, want)
		}
	}
}

func TestTextEscapesControlCharacters(t *testing.T) {
	r := &Report{Dir: "d", Findings: []Finding{{Rule: "x", Severity: High, File: "a\x1b[2J.xml", Line: 1, Subject: "user \"\u202e1000\"", Message: "m\r\nFAKE", Why: "w", Fix: "f"}}}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, bad := range []string{"\x1b", "\u202e", "\r"} {
		if strings.Contains(out, bad) {
			t.Errorf("output holds %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, `a\x1b[2J.xml`) || !strings.Contains(out, `m\r\nFAKE`) {
		t.Errorf("escapes missing:\n%s", out)
	}
	if got := Clean(strings.Repeat("y", 400)); len([]rune(got)) != maxText+1 {
		t.Errorf("not cut: %d runes", len([]rune(got)))
	}
}

func TestJSONShape(t *testing.T) {
	r, err := Run("testdata/flawed", Options{Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Findings []struct {
			Rule, Severity, File, Why, Fix string
			Line                           int
		}
		Guard []string
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Findings) != len(r.Findings) || back.Findings[0].Severity != "critical" || back.Findings[0].Line == 0 || back.Guard[0] != "192.168.42.42" {
		t.Errorf("json: %s", data)
	}
}

func TestGuardAddrs(t *testing.T) {
	got := GuardAddrs([]string{"udp://0.0.0.0:5060", "tcp://192.0.2.7:5060", "bogus"}, "udp://127.0.0.1:5080", "198.51.100.9")
	want := []string{"127.0.0.1", "198.51.100.9", "192.0.2.7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
