package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const flawed = "../freeswitch/audit/testdata/flawed"

func TestAuditCommand(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "tollguard.yaml")
	if err := os.WriteFile(cfg, []byte("sip:\n  listen: [\"udp://192.168.42.42:5060\"]\n  upstream: udp://127.0.0.1:5080\npassword_policy: {minimum: 4, strength: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(t.TempDir(), "loop.yaml")
	if err := os.WriteFile(loop, []byte("sip:\n  upstream: udp://127.0.0.1:5080\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	routes := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(routes, []byte("sip:\n  listen: [\"udp://127.0.0.1:5060\"]\n  upstream: udp://127.0.0.1:5080\n"+
		"  routes:\n    - {name: external, listen: [\"udp://192.168.42.43:5090\"], upstream: \"udp://127.0.0.1:5090\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withDir := filepath.Join(t.TempDir(), "dir.yaml")
	if err := os.WriteFile(withDir, []byte("sip:\n  upstream: udp://127.0.0.1:5080\nfreeswitch: {conf_dir: ../../examples/freeswitch}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		not    []string
		stderr string
	}{
		{"flawed fails at the default high", []string{"audit", "freeswitch", flawed}, 1, []string{"CRITICAL", "vars.xml:3", "inside an XML comment", "18 findings: 7 critical, 8 high, 2 medium, 1 low"}, nil, "15 findings at or above high"},
		{"fail-on critical", []string{"audit", "freeswitch", flawed, "--fail-on", "critical"}, 1, nil, nil, "7 findings at or above critical"},
		{"example passes", []string{"audit", "freeswitch", "../../examples/freeswitch"}, 0, []string{"no findings"}, nil, ""},
		{"example passes at info with the guard on loopback", []string{"audit", "freeswitch", "../../examples/freeswitch", "--fail-on", "info", "-c", loop}, 0, []string{"guard at 127.0.0.1", "no findings"}, nil, ""},
		{"config adds the guard and the policy", []string{"audit", "freeswitch", flawed, "-c", cfg}, 1, []string{"guard at 127.0.0.1, 192.168.42.42", "[guard-in-acl]"}, []string{"mixes 1 of the 4"}, ""},
		{"every route's listener is the guard", []string{"audit", "freeswitch", flawed, "-c", routes}, 1, []string{"guard at 127.0.0.1, 192.168.42.43"}, nil, ""},
		{"no config, no guard", []string{"audit", "freeswitch", flawed}, 1, nil, []string{"guard-in-acl", "guard at"}, ""},
		{"conf_dir from the config", []string{"audit", "freeswitch", "-c", withDir}, 0, []string{"audited ../../examples/freeswitch", "no findings"}, nil, ""},
		{"bad severity", []string{"audit", "freeswitch", flawed, "--fail-on", "severe"}, 2, nil, nil, `unknown severity "severe"`},
		{"wrong target", []string{"audit", "asterisk", flawed}, 2, nil, nil, "the only audit target is freeswitch"},
		{"no dir", []string{"audit", "freeswitch"}, 2, nil, nil, "want the FreeSWITCH configuration directory"},
		{"not a conf dir", []string{"audit", "freeswitch", t.TempDir()}, 1, nil, nil, "holds neither freeswitch.xml nor vars.xml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, out, errb := testEnv(t)
			code := run(context.Background(), e, c.args, nil)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, errb)
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range c.not {
				if strings.Contains(out.String(), s) {
					t.Errorf("stdout has %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errb.String(), c.stderr) {
				t.Errorf("stderr %q lacks %q", errb, c.stderr)
			}
		})
	}
}

func TestAuditJSON(t *testing.T) {
	e, out, _ := testEnv(t)
	if code := run(context.Background(), e, []string{"audit", "freeswitch", flawed, "--json", "--fail-on", "critical"}, nil); code != 1 {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		Files    []string
		Findings []struct {
			Rule, Severity, File, Subject, Message, Why, Fix string
			Line                                             int
		}
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rep.Findings) != 18 || len(rep.Files) != 13 {
		t.Fatalf("%d findings, %d files", len(rep.Findings), len(rep.Files))
	}
	f := rep.Findings[0]
	if f.Severity != "critical" || f.Rule != "default-password" || f.File != "directory/default/1000.xml" || f.Line != 4 || f.Why == "" || f.Fix == "" {
		t.Errorf("first finding %+v", f)
	}
}

// The synopsis names every flag `tollguard help audit` prints, and the
// reverse.
func TestAuditHelpMatchesFlags(t *testing.T) {
	e, out, _ := testEnv(t)
	if code := run(context.Background(), e, []string{"help", "audit"}, nil); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var c *Command
	for _, b := range builtin() {
		if b.Name == "audit" {
			c = &b
		}
	}
	var flags []string
	for _, l := range strings.Split(out.String(), "\n") {
		if f, ok := strings.CutPrefix(l, "  -"); ok {
			flags = append(flags, strings.Fields(f)[0])
		}
	}
	if len(flags) != 3 {
		t.Fatalf("flags %q in:\n%s", flags, out)
	}
	var named []string
	for _, m := range regexp.MustCompile(`\[--?([a-z-]+)`).FindAllStringSubmatch(c.Args, -1) {
		named = append(named, m[1])
	}
	slices.Sort(flags)
	slices.Sort(named)
	if !slices.Equal(flags, named) {
		t.Errorf("help prints flags %q, synopsis %q names %q", flags, c.Args, named)
	}
}
