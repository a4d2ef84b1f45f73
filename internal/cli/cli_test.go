package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// testEnv returns an Env writing to buffers, in UTC, with no default config.
func testEnv(t *testing.T) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &Env{Stdout: &out, Stderr: &errb, Now: time.Now, Loc: time.UTC, DefaultConfig: t.TempDir() + "/absent.yaml"}, &out, &errb
}

func TestParseAllowsFlagsAnywhere(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantPos  []string
		wantJSON bool
		wantAcct string
		wantErr  string
	}{
		{"flags after positional", []string{"1.2.3.4", "--json"}, []string{"1.2.3.4"}, true, "", ""},
		{"flags before", []string{"-json", "--account", "1001", "1.2.3.4"}, []string{"1.2.3.4"}, true, "1001", ""},
		{"flags between", []string{"1.2.3.4", "--account=1001", "extra", "--json"}, []string{"1.2.3.4", "extra"}, true, "1001", ""},
		{"double dash ends flags", []string{"1.2.3.4", "--", "--json"}, []string{"1.2.3.4", "--json"}, false, "", ""},
		{"no args", nil, nil, false, "", ""},
		{"unknown flag", []string{"1.2.3.4", "--jsn"}, nil, false, "", "flag provided but not defined: -jsn"},
		{"missing value", []string{"1.2.3.4", "--account"}, nil, false, "", "flag needs an argument: -account"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, _, _ := testEnv(t)
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			j := fs.Bool("json", false, "")
			a := fs.String("account", "", "")
			pos, err := e.Parse(fs, c.args)
			if c.wantErr != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || ue.Msg != c.wantErr {
					t.Fatalf("err = %v, want usage error %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, c.wantPos) || *j != c.wantJSON || *a != c.wantAcct {
				t.Errorf("pos=%q json=%v account=%q", pos, *j, *a)
			}
		})
	}
}

func TestHelpAndDispatch(t *testing.T) {
	served := ""
	serve := Command{Name: "serve", Args: "[-c FILE]", Summary: "run the guard", Run: func(_ context.Context, e *Env, args []string) error {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		c := fs.String("c", "", "config `FILE`")
		if _, err := e.Parse(fs, args); err != nil {
			return err
		}
		served = *c
		return nil
	}}
	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string
		notOut   string
		wantServ string
	}{
		{"no command", nil, 2, nil, []string{"usage: tollguard COMMAND", "  serve        run the guard", "  unban        lift the bans"}, "", ""},
		{"help", []string{"help"}, 0, []string{"  bans         jail settings", "  version      print the version", "  serve        run the guard"}, nil, "", ""},
		{"--help", []string{"--help"}, 0, []string{"commands:"}, nil, "", ""},
		{"help command", []string{"help", "ban"}, 0, []string{"usage: tollguard ban IP [--account A]", "-for D", "-token-file FILE"}, nil, "", ""},
		{"command -h", []string{"unban", "-h"}, 0, []string{"usage: tollguard unban IP [ACCOUNT]", "-json"}, nil, "-account", ""},
		{"help backup", []string{"help", "backup"}, 0, []string{"usage: tollguard backup NAME", "new file NAME in its backup directory", "not a path"}, nil, "", ""},
		{"backup path is a usage error", []string{"backup", "../x.db"}, 2, nil, []string{"NAME is a new file name in the daemon's backup directory", "usage: tollguard backup NAME"}, "", ""},
		{"help extra command", []string{"help", "serve"}, 0, []string{"usage: tollguard serve [-c FILE]", "-c FILE"}, nil, "", ""},
		{"help unknown", []string{"help", "frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}, "", ""},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`, "tollguard help"}, "", ""},
		{"extra command runs", []string{"serve", "-c", "x.yaml"}, 0, nil, nil, "", "x.yaml"},
		{"usage error", []string{"unban", "1.2.3.4", "1001", "extra"}, 2, nil, []string{"tollguard unban: want IP and an optional ACCOUNT, got 3 arguments", "usage: tollguard unban IP [ACCOUNT]"}, "", ""},
		{"bad ip is a usage error", []string{"ban", "1.2.3.999"}, 2, nil, []string{`ip "1.2.3.999" is not an IP address`}, "", ""},
		{"bad duration is a usage error", []string{"ban", "1.2.3.4", "--for", "soon"}, 2, nil, []string{`for: "soon" is not a duration`}, "", ""},
		{"hostile account is a usage error", []string{"unban", "1.2.3.4", "10\x1b[2J01"}, 2, nil, []string{"account contains a control character"}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			served = ""
			e, out, errb := testEnv(t)
			code := run(context.Background(), e, c.args, []Command{serve})
			if code != c.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, c.code, out, errb)
			}
			for _, s := range c.stdout {
				if !strings.Contains(out.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(errb.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, errb)
				}
			}
			if c.notOut != "" && strings.Contains(out.String(), c.notOut) {
				t.Errorf("stdout has %q:\n%s", c.notOut, out)
			}
			if served != c.wantServ {
				t.Errorf("serve ran with %q, want %q", served, c.wantServ)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v1.4.0"
	e, out, _ := testEnv(t)
	if code := run(context.Background(), e, []string{"version"}, nil); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out.String(), "tollguard v1.4.0 (go1.") {
		t.Errorf("version = %q", out)
	}
	out.Reset()
	run(context.Background(), e, []string{"version", "--json"}, nil)
	if !strings.Contains(out.String(), `"version": "v1.4.0"`) {
		t.Errorf("version --json = %q", out)
	}
}

func TestSafeCell(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "-"},
		{"1001", "1001"},
		{"分机1001", "分机1001"},
		{"10\x1b[2J01", `"10\x1b[2J01"`},
		{"a\tb", `"a\tb"`},
		{"\u202eevil", `"\u202eevil"`},
		{strings.Repeat("x", 60), strings.Repeat("x", 47) + "…"},
	}
	for _, c := range cases {
		if got := safeCell(c.in); got != c.want {
			t.Errorf("safeCell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Every control and bidi character is escaped in a table cell, whatever
// surrounds it.
func TestSafeCellEscapesEveryListedCharacter(t *testing.T) {
	var rs []rune
	for r := rune(0); r < 0x20; r++ {
		rs = append(rs, r)
	}
	for r := rune(0x7f); r < 0xa0; r++ {
		rs = append(rs, r)
	}
	rs = append(rs, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c)
	for _, r := range rs {
		got := safeCell("10" + string(r) + "01")
		if strings.ContainsRune(got, r) || !strings.HasPrefix(got, `"10\`) {
			t.Errorf("safeCell with %U = %q", r, got)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{45 * time.Second, "45s"},
		{150*time.Second + 900*time.Millisecond, "2m30s"},
		{5 * time.Hour, "5h0m"},
		{76 * time.Hour, "3d4h"},
	}
	for _, c := range cases {
		if got := fmtDuration(c.d); got != c.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := fmtLeft(time.Time{}, now); got != "never" {
		t.Errorf("zero until = %q", got)
	}
	if got := fmtLeft(now.Add(-time.Second), now); got != "expired" {
		t.Errorf("past until = %q", got)
	}
}

func TestSafeMessage(t *testing.T) {
	cases := []struct{ in, want string }{
		{`ip "\x1b" is not an IP address`, `ip "\x1b" is not an IP address`},
		{"line one\nline two", "line one\nline two"},
		{"account \x1b[2J\u202e1001 refused", `account \x1b[2J\u202e1001 refused`},
		{"a\\b \u202e\nc\x07", `a\\b \u202e` + "\n" + `c\a`},
	}
	for _, c := range cases {
		if got := safeMessage(c.in); got != c.want {
			t.Errorf("safeMessage(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// The top README's command list names every command with the same first
// argument as the command table, so `tollguard backup NAME` cannot drift
// back to FILE in one of them.
func TestReadmeListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(b), "## Commands\n\n```\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README has no command block under ## Commands")
	}
	lines := map[string][]string{}
	for _, l := range strings.Split(block, "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "tollguard" {
			lines[f[1]] = f[2:]
		}
	}
	for _, c := range builtin() {
		rest, ok := lines[c.Name]
		if !ok {
			t.Errorf("README does not list `tollguard %s`", c.Name)
			continue
		}
		first := strings.Fields(c.Args)
		if len(first) > 0 && !strings.HasPrefix(first[0], "[") && (len(rest) == 0 || rest[0] != first[0]) {
			t.Errorf("README: tollguard %s %v, command table: %s", c.Name, rest, c.Args)
		}
	}
}
