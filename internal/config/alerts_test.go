package config

import (
	"os"
	"strings"
	"testing"
)

func TestAlertsErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown type", "alerts:\n  channels:\n    - {name: a, type: pager}\n", `t.yaml:3: alerts.channels[0].type: unknown type "pager"`},
		{"duplicate name", "alerts:\n  channels:\n    - {name: a, type: wecom, key: k}\n    - {name: a, type: wecom, key: k}\n", `t.yaml:4: alerts.channels[1].name: duplicate channel "a"`},
		{"webhook without url", "alerts:\n  channels:\n    - {name: a, type: webhook}\n", `alerts.channels[0].url: a webhook channel needs a url`},
		{"webhook bad url", "alerts:\n  channels:\n    - {name: a, type: webhook, url: \"ftp://x/\"}\n", `alerts.channels[0].url: is not an http`},
		{"dingtalk without token", "alerts:\n  channels:\n    - {name: a, type: dingtalk}\n", `alerts.channels[0].access_token: a dingtalk channel needs`},
		{"wecom with secret", "alerts:\n  channels:\n    - {name: a, type: wecom, key: k, secret: s}\n", `alerts.channels[0].secret: does not apply to a wecom channel`},
		{"bad language", "alerts:\n  channels:\n    - {name: a, type: wecom, key: k, language: fr}\n", `unknown language "fr"`},
		{"email clear with password", "alerts:\n  channels:\n    - {name: m, type: email, smtp: {addr: \"h:25\", tls: none, username: u, password: p, from: a@b.c, to: [d@e.f]}}\n", `alerts.channels[0].smtp.tls: credentials are never sent without TLS`},
		{"email header injection", "alerts:\n  channels:\n    - {name: m, type: email, smtp: {addr: \"h:25\", from: \"a@b.c\\r\\nBcc: x@y.z\", to: [d@e.f]}}\n", `alerts.channels[0].smtp.from: `},
		{"email no recipients", "alerts:\n  channels:\n    - {name: m, type: email, smtp: {addr: \"h:25\", from: a@b.c}}\n", `smtp.to: needs at least one recipient`},
		{"rule unknown channel", "alerts:\n  channels:\n    - {name: a, type: wecom, key: k}\n  rules:\n    - {channels: [b]}\n", `t.yaml:5: alerts.rules[0].channels[0]: no channel named "b"`},
		{"rule unknown kind", "alerts:\n  channels:\n    - {name: a, type: wecom, key: k}\n  rules:\n    - {channels: [a], kinds: [bann]}\n", `alerts.rules[0].kinds[0]: unknown kind "bann"`},
		{"rule bad severity", "alerts:\n  channels:\n    - {name: a, type: wecom, key: k}\n  rules:\n    - {channels: [a], min_severity: high}\n", `unknown severity "high"`},
		{"unknown channel key", "alerts:\n  channels:\n    - {name: a, type: wecom, kee: k}\n", `unknown key "kee"`},
		{"zero rate", "alerts: {rate_limit: 0}\n", `alerts.rate_limit: must be at least 1`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestAlertsValid(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`alerts:
  channels:
    - {name: ops, type: dingtalk, language: zh-CN, access_token: t, secret: SECx, keywords: [tollguard]}
    - {name: noc, type: wecom, key: k, format: text}
    - {name: siem, type: webhook, url: "http://127.0.0.1:9/x", secret: s}
    - {name: mail, type: email, smtp: {addr: "127.0.0.1:25", username: u, password: p, from: a@b.c, to: [d@e.f]}}
  rules:
    - {channels: [ops, noc], kinds: [ban, compromised], min_severity: warning}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Alerts.Channels) != 4 || c.Alerts.Channel("mail") == nil || c.Alerts.Channel("nope") != nil {
		t.Errorf("channels: %+v", c.Alerts.Channels)
	}
}

// The commented channel and rule examples in examples/tollguard.yaml are
// valid once uncommented.
func TestAlertsExampleSnippets(t *testing.T) {
	data, err := os.ReadFile("../../examples/tollguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\nalerts:\n")
	if !ok {
		t.Fatal("examples/tollguard.yaml has no alerts section")
	}
	var out []string
	for _, l := range strings.Split(section, "\n") {
		switch {
		case strings.HasPrefix(l, "  #  "):
			l = "  " + strings.TrimPrefix(l, "  #  ")
		case strings.HasPrefix(l, "  channels: []"):
			l = "  channels:"
		case strings.HasPrefix(l, "  rules: []"):
			l = "  rules:"
		}
		out = append(out, l)
	}
	text := "alerts:\n" + strings.Join(out, "\n")
	c, err := Parse("snippet.yaml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(c.Alerts.Channels) != 4 || len(c.Alerts.Rules) != 2 || c.Alerts.Channel("mail").SMTP.Addr != "smtp.example.com:587" {
		t.Errorf("parsed %d channels, %d rules from:\n%s", len(c.Alerts.Channels), len(c.Alerts.Rules), text)
	}
}
