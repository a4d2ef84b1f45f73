package config

import (
	"strings"
	"testing"
)

func TestSidecarKeys(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`
sip: {listen: []}
freeswitch: {esl: "127.0.0.1:8021", password: "ClueCon"}
nftables: {enabled: true, table: guard_1}
sources:
  - {type: freeswitch_log, path: /var/log/freeswitch/freeswitch.log}
  - {type: mod_cti_fail2ban, path: /var/log/freeswitch/cti_fail2ban.log}
  - {type: asterisk_security, path: /var/log/asterisk/security.log}
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FreeSWITCH.ESL != "127.0.0.1:8021" || cfg.FreeSWITCH.Password != "ClueCon" || !cfg.NFTables.Enabled ||
		cfg.NFTables.Table != "guard_1" || len(cfg.Sources) != 3 || cfg.Sources[2].Type != "asterisk_security" {
		t.Errorf("got %+v %+v %+v", cfg.FreeSWITCH, cfg.NFTables, cfg.Sources)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"esl without port", "freeswitch: {esl: 127.0.0.1}\n", `t.yaml:1: freeswitch.esl: "127.0.0.1" is not host:port`},
		{"both passwords", "freeswitch:\n  password: a\n  password_file: /f\n", `t.yaml:3: freeswitch.password_file: set either`},
		{"bad table", "nftables:\n  table: \"x; flush ruleset\"\n", `t.yaml:2: nftables.table:`},
		{"empty table", "nftables: {table: \"\"}\n", `nftables.table:`},
		{"bad source type", "sources:\n  - {type: syslog, path: /x}\n", `t.yaml:2: sources[0].type: unknown type "syslog"`},
		{"no path", "sources:\n  - {type: freeswitch_log}\n", `sources[0].path: must not be empty`},
		{"twice", "sources:\n  - {type: freeswitch_log, path: /x}\n  - {type: asterisk_security, path: /x}\n", `sources[1].path: "/x" is listed twice`},
		{"unknown key", "nftables: {enabled: true, chain: x}\n", `unknown key "chain"`},
		{"bad jail", "log:\n  fail2ban_jail: \"tollguard unbanip\"\n", `t.yaml:2: log.fail2ban_jail:`},
		{"jail as a flag", "log: {fail2ban_jail: \"-c\"}\n", `log.fail2ban_jail:`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
