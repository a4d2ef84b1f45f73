package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/testkit"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// TestClusterProcessesOneStore: three guard processes share one Redis and
// one PostgreSQL store. Each writes its own hash chain while all three
// write at once, one is killed with SIGKILL in the middle and started
// again on the same node name, and afterwards `tollguard log verify`
// (run from any node's config) finds every chain whole; `events --node`
// sees one node's events from another node's daemon, each record naming
// its node.
func TestClusterProcessesOneStore(t *testing.T) {
	pg := testkit.StartPostgres(t)
	dsn := pg.Database(t)
	k := testpeer.StartKamailio(t, testpeer.KamailioOptions{Users: users})
	r := testpeer.StartRedis(t)
	gs := clusterGuards(t, 3, r.URL(), k.Addr, fmt.Sprintf("store: {driver: postgres, dsn: %q}\n", dsn))
	a, b, c := gs[0], gs[1], gs[2]
	waitStreams(t, gs, 10*time.Second)

	// Each node records its own events: an operator's ban (a public
	// address, so the other nodes take it too and record it on their
	// chains) and a wrong password from a new address.
	round := func(tag string, i int, nodes ...*testpeer.Guard) {
		t.Helper()
		for j, g := range nodes {
			ip := fmt.Sprintf("45.83.%d.%d", 10+i, 1+j)
			if code, err := g.Post("/api/v1/bans", map[string]string{"ip": ip, "for": "1h", "reason": tag}); err != nil || code != 201 {
				t.Fatalf("ban %s on %s: %d %v", ip, g.Name, code, err)
			}
			guess(t, g, k.Realm, testpeer.LoopbackAddr(t), tag)
		}
	}
	round("before", 0, a, b, c)
	// b dies without a final commit and comes back on its node name: the
	// PostgreSQL lock on the name went with its connection, and its chain
	// goes on from the head the store holds.
	b.Kill()
	round("while-b-down", 1, a, c)
	b.Start()
	waitStreams(t, gs, 10*time.Second)
	round("after", 2, a, b, c)

	// From c's daemon, b's events, each named.
	out, err := c.CLI("events", "--node", "b", "--since", "1h", "--limit", "1000", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep api.EventsReply
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("events --json: %v\n%.500s", err, out)
	}
	if len(rep.Records) < 4 {
		t.Fatalf("c sees %d of b's events, want its bans of two rounds at least", len(rep.Records))
	}
	for _, e := range rep.Records {
		if e.Node != "b" {
			t.Fatalf("events --node b returned a record of node %q", e.Node)
		}
	}

	for _, g := range gs {
		g.Stop()
	}
	out, err = a.CLI("log", "verify")
	if err != nil {
		t.Fatalf("log verify: %v", err)
	}
	t.Logf("log verify:\n%s", out)
	for _, name := range []string{"a", "b", "c"} {
		if !strings.Contains(out, "node "+name+": ok") {
			t.Errorf("log verify does not report node %s's chain whole:\n%s", name, out)
		}
	}
	if strings.Contains(out, "BROKEN") {
		t.Errorf("a chain is broken:\n%s", out)
	}
	// Every chain has the node's own records: its bans of all rounds.
	for _, name := range []string{"a", "b", "c"} {
		out, err := a.CLI("log", "verify", "--node", name, "--json")
		if err != nil {
			t.Fatalf("log verify --node %s: %v", name, err)
		}
		var v struct {
			OK     bool `json:"ok"`
			Chains []struct {
				Node    string `json:"node"`
				Records int64  `json:"records"`
			} `json:"chains"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("log verify --json: %v\n%.500s", err, out)
		}
		if !v.OK || len(v.Chains) != 1 || v.Chains[0].Node != name || v.Chains[0].Records < 6 {
			t.Errorf("log verify --node %s: %+v, want one whole chain with its node's records", name, v)
		}
	}
}
