package config

import (
	"strings"
	"testing"
)

func TestRouteErrors(t *testing.T) {
	ext := "sip:\n  routes:\n    - name: external\n      listen: [\"udp://0.0.0.0:5080\"]\n      upstream: udp://127.0.0.1:5090\n"
	cases := []struct {
		name string
		yaml string
		want string // substring of the error, including file:line
	}{
		{"bad name", strings.Replace(ext, "name: external", "name: External", 1),
			`t.yaml:3: sip.routes[0].name: "External" is not 1 to 32`},
		{"default taken by sip.listen", strings.Replace(ext, "name: external", "name: default", 1),
			`t.yaml:3: sip.routes[0].name: "default" is used twice`},
		{"no listeners", strings.Replace(ext, `["udp://0.0.0.0:5080"]`, "[]", 1),
			`t.yaml:4: sip.routes[0].listen: must not be empty`},
		{"listener of the default route", strings.Replace(ext, "5080\"]", "5060\"]", 1),
			`t.yaml:4: sip.routes[0].listen[0]: "udp://0.0.0.0:5060" is bound by sip.listen[0] already`},
		{"bad listener scheme", strings.Replace(ext, `udp://0.0.0.0:5080`, `sctp://0.0.0.0:5080`, 1),
			`t.yaml:4: sip.routes[0].listen[0]: scheme "sctp"`},
		{"tls without cert", strings.Replace(ext, `udp://0.0.0.0:5080`, `tls://0.0.0.0:5081`, 1),
			`t.yaml:4: sip.routes[0].listen[0]: a tls:// listener needs`},
		{"wss without cert", strings.Replace(ext, `udp://0.0.0.0:5080`, `wss://0.0.0.0:7443`, 1),
			`t.yaml:4: sip.routes[0].listen[0]: a wss:// listener needs`},
		{"wss on sip.listen without cert", "sip:\n  listen: [\"wss://0.0.0.0:7443\"]\n",
			`t.yaml:2: sip.listen[0]: a wss:// listener needs`},
		{"origin with a path", "sip:\n  ws_origins: [\"https://app.example/phone\"]\n",
			`t.yaml:2: sip.ws_origins[0]: "https://app.example/phone" is not an origin`},
		{"no upstream", strings.Replace(ext, "      upstream: udp://127.0.0.1:5090\n", "", 1),
			`sip.routes[0].upstream: must be set`},
		{"upstream of the default route", strings.Replace(ext, "5090", "5080", 1),
			`t.yaml:5: sip.routes[0].upstream: "udp://127.0.0.1:5080" is sip.upstream already`},
		{"tls upstream", strings.Replace(ext, "udp://127.0.0.1:5090", "tls://127.0.0.1:5090", 1),
			`t.yaml:5: sip.routes[0].upstream: scheme "tls"`},
		{"bad allow cidr", ext + "      allow_sources: [\"198.51.100.0/33\"]\n",
			`t.yaml:6: "198.51.100.0/33" is not an address or CIDR`},
		{"unknown route key", ext + "      allow: []\n", `t.yaml:6: unknown key "allow"`},
		{"two routes, one name", ext + "    - name: external\n      listen: [\"udp://0.0.0.0:5090\"]\n      upstream: udp://127.0.0.1:6000\n",
			`t.yaml:6: sip.routes[1].name: "external" is used twice`},
		{"lists without sip.listen", "sip:\n  listen: []\n  deny_sources: [\"192.0.2.1\"]\n",
			`t.yaml:3: sip.deny_sources: restricts sip.listen`},
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

func TestRouteValues(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
sip:
  listen: ["udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"]
  upstream: udp://10.0.0.5:5060
  deny_sources: ["198.51.100.0/24"]
  routes:
    - name: external
      listen: ["udp://0.0.0.0:5080"]
      upstream: udp://10.0.0.5:5080
      allow_sources: ["198.51.100.0/24", "::ffff:203.0.113.7"]
    - name: browsers
      listen: ["ws://0.0.0.0:5066"]
      upstream: udp://10.0.0.5:5062
  ws_origins: ["https://phone.example.com", "*"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SIP.DenySources[0].P().String(); got != "198.51.100.0/24" {
		t.Errorf("deny_sources = %s", got)
	}
	if len(cfg.SIP.WSOrigins) != 2 {
		t.Errorf("ws_origins = %q", cfg.SIP.WSOrigins)
	}
	if len(cfg.SIP.Routes) != 2 {
		t.Fatalf("routes = %+v", cfg.SIP.Routes)
	}
	r := cfg.SIP.Routes[0]
	if r.Name != "external" || r.Upstream != "udp://10.0.0.5:5080" || r.AllowSources[1].P().String() != "203.0.113.7/32" {
		t.Errorf("route = %+v", r)
	}
}
