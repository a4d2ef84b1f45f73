package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want string // substring of the error, including file:line
	}{
		{"unknown top key", "data_dir: x\nsipp: {}\n", `t.yaml:2: unknown key "sipp"`},
		{"unknown nested key", "sip:\n  listen: []\n  upstrem: udp://127.0.0.1:5080\n", `t.yaml:3: unknown key "upstrem"`},
		{"bad duration", "jail:\n  register_failure:\n    - {findtime: 10x, maxretry: 3, banmode: ip, bantime: 1s}\n", `t.yaml:3: "10x" is not a duration`},
		{"bad banmode", "jail:\n  register_failure:\n    - {findtime: 10s, maxretry: 3, banmode: office, bantime: 1s}\n", `t.yaml:3: jail.register_failure[0].banmode: unknown banmode "office"`},
		{"bad listener scheme", "sip:\n  listen:\n    - udp://0.0.0.0:5060\n    - sctp://0.0.0.0:5060\n", `t.yaml:4: sip.listen[1]: scheme "sctp"`},
		{"tls without cert", "sip:\n  listen: [\"tls://0.0.0.0:5061\"]\n", `t.yaml:2: sip.listen[0]: a tls:// listener needs`},
		{"bad cidr", "allow: [\"10.0.0.0/33\"]\n", `t.yaml:1: "10.0.0.0/33" is not an address or CIDR`},
		{"bad banned_response", "sip:\n  banned_response: dance\n", `t.yaml:2: sip.banned_response: unknown value "dance" (hint: drop`},
		{"postgres without dsn", "store: {driver: postgres}\n", `t.yaml:1: store.dsn: the postgres driver needs a DSN`},
		{"short retention", "store:\n  retention: 1h\n", `t.yaml:2: store.retention: must be at least 1d`},
		{"strip a routing header", "sip:\n  strip_headers: [P-Asserted-Identity, Via]\n", `t.yaml:2: sip.strip_headers[1]: "Via" is needed to route`},
		{"strip a compact routing header", "sip:\n  strip_headers: [i]\n", `sip.strip_headers[0]: "i" is needed to route`},
		{"strip a non-header", "sip:\n  strip_headers: [\"X Bad\"]\n", `sip.strip_headers[0]: "X Bad" is not a header name`},
		{"per-source cap above total", "sip:\n  max_connections: 10\n  max_connections_per_source: 11\n", `sip.max_connections_per_source: must be between 1`},
		{"zero idle timeout", "sip:\n  unregistered_idle_timeout: 0s\n", `sip.unregistered_idle_timeout: must be positive`},
		{"syntax", "sip: [\n", `t.yaml:`},
		{"wrong type", "flood: {limit: lots}\n", `t.yaml:1:`},
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

func TestParseValues(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
allow: ["203.0.113.0/24", "::ffff:198.51.100.7", "2001:db8::1"]
store: {retention: 7d}
jail:
  register_failure:
    - {findtime: 60s, maxretry: 3, banmode: ip_account, bantime: 180s}
    - {findtime: 1h, maxretry: 10, banmode: ip, bantime: 1d}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Store.Retention.D(); got != 7*24*time.Hour {
		t.Errorf("retention = %v", got)
	}
	wantAllow := []string{"203.0.113.0/24", "198.51.100.7/32", "2001:db8::1/128"}
	for i, w := range wantAllow {
		if got := cfg.Allow[i].P().String(); got != w {
			t.Errorf("allow[%d] = %s, want %s", i, got, w)
		}
	}
	if n := len(cfg.Jail.RegisterFailure); n != 2 || cfg.Jail.RegisterFailure[1].BanTime.D() != 24*time.Hour {
		t.Errorf("register_failure = %+v", cfg.Jail.RegisterFailure)
	}
	// Keys not in the file keep their defaults.
	if cfg.SIP.BannedResponse != "drop" || cfg.Admin.Listen != "127.0.0.1:9061" {
		t.Errorf("defaults lost: %+v %+v", cfg.SIP, cfg.Admin)
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	cfg, err := Parse("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Jail.RegisterFailure[0].MaxRetry != 3 {
		t.Errorf("got %+v", cfg.Jail)
	}
}

// mod_cti's cti.json writes register_failure with integer seconds and a
// numeric banmode; pasted as they are, they load as the same values
// tollguard's own form gives.
func TestModCTIForms(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       JailRule
	}{
		{"mod_cti integers", "{findtime: 60, maxretry: 3, banmode: 1, bantime: 180}", JailRule{FindTime: Duration(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: Duration(3 * time.Minute)}},
		{"banmode 0", "{findtime: 60, maxretry: 5, banmode: 0, bantime: 86400}", JailRule{FindTime: Duration(time.Minute), MaxRetry: 5, BanMode: "ip", BanTime: Duration(24 * time.Hour)}},
		{"quoted mod_cti integers", `{findtime: "60", maxretry: 3, banmode: "1", bantime: "180"}`, JailRule{FindTime: Duration(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: Duration(3 * time.Minute)}},
		{"tollguard form", "{findtime: 60s, maxretry: 3, banmode: ip_account, bantime: 3m}", JailRule{FindTime: Duration(time.Minute), MaxRetry: 3, BanMode: "ip_account", BanTime: Duration(3 * time.Minute)}},
		{"mixed", "{findtime: 1m, maxretry: 3, banmode: 0, bantime: 180}", JailRule{FindTime: Duration(time.Minute), MaxRetry: 3, BanMode: "ip", BanTime: Duration(3 * time.Minute)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte("jail:\n  register_failure:\n    - "+tc.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Jail.RegisterFailure[0]; got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestModCTIErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"banmode 2", "jail:\n  register_failure:\n    - {findtime: 60, maxretry: 3, banmode: 2, bantime: 180}\n", `t.yaml:3: jail.register_failure[0].banmode: unknown banmode "2" (hint: ip or 0`},
		{"negative seconds", "jail:\n  register_failure:\n    - {findtime: -60, maxretry: 3, banmode: 1, bantime: 180}\n", `t.yaml:3: "-60" is not a duration`},
		{"zero seconds", "jail:\n  register_failure:\n    - {findtime: 0, maxretry: 3, banmode: 1, bantime: 180}\n", `t.yaml:3: jail.register_failure[0].findtime: must be positive`},
		{"huge seconds", "jail:\n  register_failure:\n    - {findtime: 99999999999999999999, maxretry: 3, banmode: 1, bantime: 180}\n", `t.yaml:3: "99999999999999999999" seconds is out of range`},
		{"unknown key in entry", "jail:\n  register_failure:\n    - findtime: 60\n      maxretri: 3\n", `t.yaml:4: unknown key "maxretri"`},
		{"entry not a mapping", "jail:\n  register_failure:\n    - 60\n", `t.yaml:3: a register_failure entry is a mapping`},
		{"strength 5", "password_policy: {strength: 5}\n", `t.yaml:1: password_policy.strength: must be between 0 and 4`},
		{"strength -1", "password_policy: {strength: -1}\n", `t.yaml:1: password_policy.strength: must be between 0 and 4`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// mod_cti's strength 0 means no class requirement; it loads.
func TestPasswordStrengthZero(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("password_policy: {minimum: 8, strength: 0}\nfreeswitch: {conf_dir: /etc/freeswitch}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PasswordPolicy != (PasswordPolicy{Minimum: 8, Strength: 0}) || cfg.FreeSWITCH.ConfDir != "/etc/freeswitch" {
		t.Errorf("got %+v %+v", cfg.PasswordPolicy, cfg.FreeSWITCH)
	}
}

// The anomaly section takes days, defaults to shadow, and its errors come
// from the package's validation with the key's line.
func TestAnomalySection(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte("anomaly:\n  window: 14d\n  mode: enforce\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.Anomaly.Model(); m.Window != 14*24*time.Hour || m.Mode != "enforce" || m.Block != 0.75 {
		t.Errorf("anomaly = %+v", m)
	}
	if Default().Anomaly.Mode != "shadow" {
		t.Errorf("default mode %q, want shadow", Default().Anomaly.Mode)
	}
	_, err = Parse("t.yaml", []byte("anomaly:\n  mode: shadow\n  warn: 1.5\n"))
	if err == nil || err.Error() != "t.yaml:3: anomaly.warn: 1.5 is not between 0 and 1 (hint: see the anomaly section of examples/tollguard.yaml)" {
		t.Errorf("err = %v", err)
	}
}
