package cli

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/safetext"
	"github.com/tollguard/tollguard/internal/store"
)

// storeDaemon runs an api.Server with the event routes over a real SQLite
// store in its data dir, holding a brute force that succeeds and calls
// abroad, and writes the config file the CLI reads.
func storeDaemon(t *testing.T) (*daemon, store.Store) {
	t.Helper()
	d := &daemon{dir: t.TempDir()}
	data := filepath.Join(d.dir, "data")
	now := func() time.Time { return t0 }
	st, err := store.Open(context.Background(), config.Default().Store, data, store.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := api.New(api.Options{Listen: "127.0.0.1:0", DataDir: data, Now: now,
		Audit: func(_ context.Context, a event.Admin) { st.Record(&a) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountEvents(st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	d.cfg = filepath.Join(d.dir, "tollguard.yaml")
	yaml := "data_dir: " + data + "\nadmin:\n  listen: \"" + srv.Addr().String() + "\"\n"
	if err := os.WriteFile(d.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("203.0.113.7:5060")
	for i := range 4 {
		st.Record(&event.AuthFailure{Meta: event.Meta{Time: t0.Add(-time.Hour + time.Duration(i)*time.Second), Source: src},
			SIP: event.SIP{Method: "REGISTER", UserAgent: "=cmd|' /C calc'!A0"}, Account: "13812345678", Code: 403})
	}
	st.Record(&event.Register{Meta: event.Meta{Time: t0.Add(-50 * time.Minute), Source: src}, Account: "13812345678"})
	st.Record(&event.CallEnded{Meta: event.Meta{Time: t0.Add(-40 * time.Minute), Source: src}, Account: "13812345678",
		Destination: "00972599123456", Duration: 10 * time.Minute, Billsec: 9 * time.Minute, Cause: "bye"})
	st.Record(&event.Register{Meta: event.Meta{Time: t0.Add(-30 * time.Minute), Source: netip.MustParseAddrPort("192.0.2.5:5060")}, Account: "1002"})
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d, st
}

func TestEventsCommand(t *testing.T) {
	d, st := storeDaemon(t)
	code, out, errb := d.cli(t, "events", "-c", d.cfg, "--ip", "203.0.113.7")
	if code != 0 || !strings.Contains(out, "auth_failure") || !strings.Contains(out, "138****5678") || strings.Contains(out, "192.0.2.5") {
		t.Fatalf("events --ip: exit %d\n%s%s", code, out, errb)
	}
	code, out, _ = d.cli(t, "events", "-c", d.cfg, "--kind", "call_ended", "--csv")
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != 2 {
		t.Fatalf("events --csv: exit %d, %v\n%s", code, err, out)
	}
	if recs[0][0] != "seq" || recs[1][2] != "call_ended" || recs[1][7] != "009*******3456" {
		t.Errorf("csv row = %q", recs[1])
	}
	code, out, _ = d.cli(t, "events", "-c", d.cfg, "--account", "13812345678", "--kind", "auth_failure", "--csv", "--limit", "1")
	if code != 0 || !strings.Contains(out, `'=cmd|`) {
		t.Errorf("a formula in a CSV cell was not defused:\n%s", out)
	}
	code, out, _ = d.cli(t, "events", "-c", d.cfg, "--kind", "call_ended", "--json", "--unmask")
	if code != 0 || !strings.Contains(out, "00972599123456") || !strings.Contains(out, `"masked": false`) {
		t.Errorf("events --unmask --json: exit %d\n%s", code, out)
	}
	if err := st.Flush(context.Background()); err != nil { // the audit is asynchronous
		t.Fatal(err)
	}
	code, out, _ = d.cli(t, "events", "-c", d.cfg, "--kind", "admin")
	if code != 0 || !strings.Contains(out, "unmask") {
		t.Errorf("the unmask was not recorded as an admin action:\n%s", out)
	}
	if code, _, errb := d.cli(t, "events", "-c", d.cfg, "--json", "--csv"); code != ExitUsage {
		t.Errorf("--json --csv: exit %d %s", code, errb)
	}
}

func TestInvestigateCommand(t *testing.T) {
	d, _ := storeDaemon(t)
	code, out, errb := d.cli(t, "investigate", "-c", d.cfg, "--since", "24h")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, s := range []string{"LIKELY COMPROMISED", `"138****5678"`, "from 203.0.113.7", `"009*******3456"`, "9m0s"} {
		if !strings.Contains(out, s) {
			t.Errorf("report lacks %q:\n%s", s, out)
		}
	}
}

func TestBackupAndLogVerifyCommands(t *testing.T) {
	d, st := storeDaemon(t)
	// Through the real admin API: the copy lands 0600 in <data_dir>/backups.
	to := filepath.Join(d.dir, "data", store.BackupDirName, "copy.db")
	if code, out, errb := d.cli(t, "backup", "-c", d.cfg, "copy.db"); code != 0 || out != "backup written to "+to+"\n" {
		t.Fatalf("backup: exit %d %q %s", code, out, errb)
	}
	if fi, err := os.Stat(to); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	c := config.Default().Store
	c.DSN = to
	cp, err := store.Open(context.Background(), c, filepath.Join(d.dir, "data"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := cp.Verify(context.Background()); err != nil || !rep.OK || len(rep.Chains) != 1 || rep.Chains[0].Records < 7 {
		t.Errorf("the copy: %+v %v", rep, err)
	}
	cp.Close()
	// Taken by the first backup: refused by the daemon, with no path named.
	if code, _, errb := d.cli(t, "backup", "-c", d.cfg, "copy.db"); code != ExitError || !strings.Contains(errb, "backup refused") || strings.Contains(errb, "/") {
		t.Errorf("backup to a taken name: exit %d %q", code, errb)
	}
	// A path is a usage error, before the daemon is asked.
	for _, arg := range []string{to, "../x.db", "data/../x.db", "x\x00.db", "./x.db"} {
		if code, _, errb := d.cli(t, "backup", "-c", d.cfg, arg); code != ExitUsage || !strings.Contains(errb, "not a path") {
			t.Errorf("backup %q: exit %d %q", arg, code, errb)
		}
	}
	// Verify runs beside the live daemon.
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, out, errb := d.cli(t, "log", "verify", "-c", d.cfg)
	if code != 0 || !strings.HasPrefix(out, "ok: 9 records") { // 7 events, 2 audited backups
		t.Fatalf("log verify on a good log: exit %d %q %s", code, out, errb)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(d.dir, "data", "tollguard.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET data = REPLACE(data, '203.0.113.7', '192.0.2.1') WHERE seq = 5`); err != nil {
		t.Fatal(err)
	}
	code, out, errb = d.cli(t, "log", "verify", "-c", d.cfg)
	if code != ExitError || !strings.Contains(out, "BROKEN at record 5") || !strings.Contains(errb, "failed verification at record 5") {
		t.Fatalf("log verify on a changed record: exit %d %q %q", code, out, errb)
	}
	if code, _, _ := d.cli(t, "log", "check", "-c", d.cfg); code != ExitUsage {
		t.Errorf("log check: exit %d, want usage", code)
	}
}

// hostileText holds every character class that must not reach a terminal
// or a spreadsheet raw: C0 (ESC, tab, CR), DEL, C1, bidi controls and
// marks.
const hostileText = "\x1b]0;pwned\x07\x7f\u009b31m\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\t\r"

// Attacker text reaches the table and the CSV escaped, and formulas are
// defused; the JSON keeps it exactly.
func TestEventsEscapeAttackerText(t *testing.T) {
	d, st := storeDaemon(t)
	src := netip.MustParseAddrPort("198.51.100.9:5060")
	fields := map[string]string{
		"account":    "+1" + hostileText,
		"user_agent": "=HYPERLINK(\"x\")" + hostileText,
		"call_id":    "@" + hostileText,
		"from":       "-2" + hostileText,
		"to":         "\t=1+1",
		"ruri":       "\r=1+1",
	}
	st.Record(&event.AuthFailure{Meta: event.Meta{Time: t0.Add(-time.Minute), Source: src}, Code: 403, Account: fields["account"],
		SIP: event.SIP{Method: "INVITE", UserAgent: fields["user_agent"], CallID: fields["call_id"], FromUser: fields["from"], ToUser: fields["to"], RURIUser: fields["ruri"]}})
	if err := st.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw := func(what, out string) {
		t.Helper()
		for i, r := range out {
			if r != '\n' && safetext.Unsafe(r) {
				t.Errorf("%s: raw %U at byte %d:\n%s", what, r, i, out)
				return
			}
		}
	}

	code, out, errb := d.cli(t, "events", "-c", d.cfg, "--ip", "198.51.100.9")
	if code != 0 {
		t.Fatalf("events: exit %d %s", code, errb)
	}
	raw("table", out)

	code, out, _ = d.cli(t, "events", "-c", d.cfg, "--ip", "198.51.100.9", "--csv")
	raw("csv", strings.ReplaceAll(out, "\r\n", "\n"))
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(recs) != 2 {
		t.Fatalf("events --csv: exit %d, %v\n%s", code, err, out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for name, v := range fields {
		cell := recs[1][col[name]]
		if cell != "'"+safetext.Escape(v) {
			t.Errorf("csv %s = %q, want it defused and escaped", name, cell)
		}
	}

	code, out, _ = d.cli(t, "events", "-c", d.cfg, "--ip", "198.51.100.9", "--json")
	var rep api.EventsReply
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Records) != 1 {
		t.Fatalf("events --json: exit %d, %v", code, err)
	}
	r := rep.Records[0]
	got := map[string]string{"account": r.Account, "user_agent": r.UserAgent, "call_id": r.CallID, "from": r.From, "to": r.To, "ruri": r.RURI}
	for name, v := range fields {
		if got[name] != v {
			t.Errorf("json %s = %q, want %q exactly", name, got[name], v)
		}
	}
	raw("json", out) // encoding/json escapes what is not printable
}
