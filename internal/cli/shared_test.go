package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/testkit"
)

// TestSharedPostgresStore is the command line over one real PostgreSQL
// database that three guards (nodes a, b and c, each with its own
// data_dir and key) wrote at once: `log verify` on node a's config checks
// the three chains (a with its own key, b and c with the keys they
// stored), `--node` checks one, a record of b changed is named with a and
// c still OK and exit 1; `events --node` and the NODE column through the
// admin API.
func TestSharedPostgresStore(t *testing.T) {
	ctx := context.Background()
	pg := testkit.StartPostgres(t)
	scfg := config.Default().Store
	scfg.Driver, scfg.DSN = "postgres", pg.Database(t)
	root := t.TempDir()
	nodes := []string{"a", "b", "c"}
	const perNode = 300
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		wg.Go(func() {
			st, err := store.Open(ctx, scfg, filepath.Join(root, n), store.Options{Node: n, Now: func() time.Time { return t0 }})
			if err != nil {
				errs[i] = err
				return
			}
			for j := range perNode {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)}), 5060)
				st.Record(&event.AuthFailure{Meta: event.Meta{Time: t0.Add(-time.Duration(j) * time.Second), Source: src}, Account: fmt.Sprint(1000 + j%3), Code: 403})
			}
			errs[i] = st.Close()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %s: %v", nodes[i], err)
		}
	}

	cfg := filepath.Join(root, "a.yaml")
	yaml := fmt.Sprintf("data_dir: %s\nstore:\n  driver: postgres\n  dsn: %q\ncluster:\n  node: a\n", filepath.Join(root, "a"), scfg.DSN)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cfg: cfg, dir: root}
	code, out, errb := d.cli(t, "log", "verify", "-c", cfg)
	if code != 0 {
		t.Fatalf("log verify: exit %d\n%s%s", code, out, errb)
	}
	for _, want := range []string{"node a: ok: 300 records (seq 1 to 300", "(this host's)", "node b: ok: 300 records", "node c: ok: 300 records", "(as the node stored it, not pinned)"} {
		if !strings.Contains(out, want) {
			t.Errorf("log verify output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = d.cli(t, "log", "verify", "-c", cfg, "--node", "b", "--json")
	var rep store.VerifyReport
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || !rep.OK || len(rep.Chains) != 1 || rep.Chains[0].Node != "b" || rep.Chains[0].Records != perNode {
		t.Fatalf("log verify --node b --json: exit %d %v %+v", code, err, rep)
	}
	if code, _, errb := d.cli(t, "log", "verify", "-c", cfg, "--node", "../b"); code != ExitUsage {
		t.Errorf("--node ../b: exit %d %s", code, errb)
	}

	db, err := sql.Open("pgx", scfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE events SET data = REPLACE(data, '203.0.113.2', '192.0.2.1') WHERE node = 'b' AND seq = 7`); err != nil {
		t.Fatal(err)
	}
	code, out, errb = d.cli(t, "log", "verify", "-c", cfg)
	if code != ExitError || !strings.Contains(out, "node b: BROKEN at record 7") || !strings.Contains(out, "node a: ok") ||
		!strings.Contains(out, "node c: ok") || !strings.Contains(errb, "failed verification for node b at record 7") {
		t.Fatalf("log verify with b's record 7 changed: exit %d\n%s%s", code, out, errb)
	}

	// events and investigate through the admin API of a guard on the store.
	st, err := store.Open(ctx, scfg, filepath.Join(root, "a"), store.Options{ReadOnly: true, Node: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := api.New(api.Options{Listen: "127.0.0.1:0", DataDir: filepath.Join(root, "a"), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	srv.MountEvents(st)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-srv.Ready()
	yaml += fmt.Sprintf("admin:\n  listen: %q\n", srv.Addr().String())
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errb = d.cli(t, "events", "-c", cfg, "--node", "c", "--limit", "1000", "--json")
	var evs api.EventsReply
	if err := json.Unmarshal([]byte(out), &evs); code != 0 || err != nil || len(evs.Records) != perNode {
		t.Fatalf("events --node c: exit %d %v %d records %s", code, err, len(evs.Records), errb)
	}
	for _, r := range evs.Records {
		if r.Node != "c" || r.Source != "203.0.113.3:5060" {
			t.Fatalf("events --node c returned %+v", r)
		}
	}
	code, out, errb = d.cli(t, "events", "-c", cfg, "--limit", "5")
	if code != 0 || !strings.HasPrefix(out, "NODE") {
		t.Fatalf("events over several nodes: exit %d, want a NODE column:\n%s%s", code, out, errb)
	}
	code, _, errb = d.cli(t, "events", "-c", cfg, "--node", "x'; DROP TABLE events; --")
	if code == 0 || !strings.Contains(errb, "not a node name") {
		t.Errorf("hostile --node: exit %d %s", code, errb)
	}
	code, out, errb = d.cli(t, "investigate", "-c", cfg, "--since", "2h", "--node", "a", "--json")
	var inv api.InvestigateReply
	if err := json.Unmarshal([]byte(out), &inv); code != 0 || err != nil {
		t.Fatalf("investigate --node a: exit %d %v %s", code, err, errb)
	}
	if b, _ := json.Marshal(inv.Report); strings.Contains(string(b), "203.0.113.2") || !strings.Contains(string(b), "203.0.113.1") {
		t.Errorf("investigate --node a reported another node's source or missed its own: %s", b)
	}
}
