package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/testkit"
)

// TestGuardsShareOnePostgresStore starts two guards on one PostgreSQL
// store, named by cluster.node (no Redis): each records in its own chain
// under its name, the second reloads the ban the first stored, and `log
// verify`'s check passes for both chains.
func TestGuardsShareOnePostgresStore(t *testing.T) {
	pg := testkit.StartPostgres(t)
	dsn := pg.Database(t)
	root := t.TempDir()
	guard := func(node string) *Guard {
		t.Helper()
		cfg := config.Default()
		cfg.DataDir = filepath.Join(root, node)
		cfg.SIP.Listen = nil
		cfg.Admin.Listen = "127.0.0.1:0"
		cfg.Store.Driver, cfg.Store.DSN = "postgres", dsn
		cfg.Cluster.Node = node
		g, err := New(t.Context(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("guard %s: %v", node, err)
		}
		return g
	}
	a := guard("pbx-a")
	banned := netip.MustParseAddr("198.51.100.7")
	if _, err := (banService{a}).Ban(t.Context(), api.BanRequest{IP: banned, For: time.Hour, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	b := guard("pbx-b")
	if _, ok := b.Set().Banned(banned, time.Now()); !ok {
		t.Error("the second guard did not reload the ban the first stored")
	}
	b.st.Record(&event.Admin{Meta: event.Meta{Time: time.Now()}, Actor: "test", Action: "hello"})
	for _, g := range []*Guard{a, b} {
		if err := g.st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default().Store
	cfg.Driver, cfg.DSN = "postgres", dsn
	st, err := store.Open(context.Background(), cfg, t.TempDir(), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := st.Verify(context.Background())
	if err != nil || !rep.OK || len(rep.Chains) != 2 || rep.Chain("pbx-a").Records == 0 || rep.Chain("pbx-b").Records == 0 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	recs, err := st.Query(context.Background(), store.Filter{Kinds: []event.Kind{event.KindBan}})
	if err != nil || len(recs) != 1 || recs[0].Node != "pbx-a" {
		t.Fatalf("the ban event: %+v, %v; want one, recorded by pbx-a", recs, err)
	}
	recs, err = st.Query(context.Background(), store.Filter{Node: "pbx-b", Kinds: []event.Kind{event.KindAdmin}})
	if err != nil || len(recs) != 1 || recs[0].Event.(*event.Admin).Action != "hello" {
		t.Fatalf("pbx-b's admin event: %+v, %v", recs, err)
	}
}
