package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/intel"
	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// node is one guard of a test cluster.
type node struct {
	g    *Guard
	sip  netip.AddrPort
	stop func()
}

// startNode runs a guard named name on loopback, sharing through redisURL.
func startNode(t testing.TB, name, redisURL, upstream string, edit func(*config.Config)) *node {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.SIP.Listen = []string{"udp://127.0.0.1:0"}
	cfg.SIP.Upstream = upstream
	cfg.Admin.Listen = "127.0.0.1:0"
	// The subject is sharing bans and failures: the attackers do not
	// retransmit, so greylisting would hold them and nothing would fail.
	cfg.Greylist.Enabled = false
	cfg.Cluster.Redis, cfg.Cluster.Node = redisURL, name
	cfg.Allow = []config.Prefix{config.Prefix(netip.MustParsePrefix("45.83.9.0/24"))}
	if edit != nil {
		edit(cfg)
	}
	g, sip, cancel, done := runGuard(t, context.Background(), cfg)
	n := &node{g: g, sip: sip}
	var once bool
	n.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", name, err)
		}
	}
	t.Cleanup(n.stop)
	return n
}

// waitBanned waits until addr is banned on n (or not, with want false) and
// returns how long that took.
func waitBanned(t testing.TB, n *node, addr netip.Addr, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, ok := n.g.Set().Banned(addr, time.Now())
		if ok == want {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("%s banned = %v after %v, want %v", addr, ok, within, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func operatorBan(t testing.TB, n *node, addr netip.Addr) {
	t.Helper()
	if _, err := (banService{n.g}).Ban(context.Background(), api.BanRequest{IP: addr, For: time.Hour, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

// TestClusterBans runs three guards on one redis-server: an operator ban on
// A is in force on B and C within the bound (the measured time is logged;
// BenchmarkClusterPropagation records it); an allowed address cannot be
// pushed through Redis; Redis killed: A still bans alone; Redis restarted
// empty: the ban A made meanwhile reaches B; a node started late loads the
// bans in force; an unban on B lifts the ban everywhere.
func TestClusterBans(t *testing.T) {
	r := testpeer.StartRedis(t)
	a := startNode(t, "a", r.URL(), "udp://127.0.0.1:9", nil)
	b := startNode(t, "b", r.URL(), "udp://127.0.0.1:9", nil)
	c := startNode(t, "c", r.URL(), "udp://127.0.0.1:9", nil)
	waitConnected(t, a, b, c)

	x := netip.MustParseAddr("45.83.1.7")
	operatorBan(t, a, x)
	took := waitBanned(t, b, x, true, 2*time.Second)
	waitBanned(t, c, x, true, 2*time.Second)
	t.Logf("operator ban on a in force on b after %v", took)
	if d, _ := b.g.Set().Banned(x, time.Now()); d.Origin != "cluster:a" {
		t.Errorf("received ban origin %q, want cluster:a", d.Origin)
	}
	for start := time.Now(); !storeHas(t, b, x); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("received ban not in b's store: a restart would lose it")
		}
	}

	// A ban of an allowed address published straight into Redis is
	// refused; the same message for another address is applied (so the
	// refusal is the screen's, not the format's).
	allowed, control := netip.MustParseAddr("45.83.9.1"), netip.MustParseAddr("45.83.1.50")
	for _, x := range []netip.Addr{allowed, control} {
		raw := fmt.Sprintf(`{"v":1,"node":"evil","decision":{"type":"ban","scope":"ip","prefix":"%s/32","origin":"engine","rule":"x","at":"%s"}}`,
			x, time.Now().UTC().Format(time.RFC3339Nano))
		if _, err := r.Do("PUBLISH", "{tollguard}:bans:events", raw); err != nil {
			t.Fatal(err)
		}
	}
	waitBanned(t, b, control, true, 2*time.Second)

	if s, _ := (banService{a.g}).Summary(context.Background()); !strings.HasPrefix(s.Cluster, "node a, connected") {
		t.Errorf("bans summary cluster line %q", s.Cluster)
	}
	r.Stop()
	y := netip.MustParseAddr("45.83.1.8")
	operatorBan(t, a, y)
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if s, _ := (banService{a.g}).Summary(context.Background()); strings.Contains(s.Cluster, "NOT connected") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a does not say it is alone with Redis down")
		}
	}
	waitBanned(t, a, y, true, 0)
	time.Sleep(200 * time.Millisecond)
	if _, ok := b.g.Set().Banned(y, time.Now()); ok {
		t.Fatal("ban reached b with Redis down")
	}
	r.Start()
	waitBanned(t, b, y, true, 10*time.Second)
	waitBanned(t, c, y, true, 10*time.Second)

	late := startNode(t, "late", r.URL(), "udp://127.0.0.1:9", nil)
	waitBanned(t, late, x, true, 5*time.Second)
	waitBanned(t, late, y, true, 5*time.Second)
	for _, n := range []*node{a, b, c, late} {
		if _, ok := n.g.Set().Banned(allowed, time.Now()); ok {
			t.Fatal("an allowed address was banned through Redis")
		}
	}

	if _, err := (banService{b.g}).Unban(context.Background(), x, "", "test"); err != nil {
		t.Fatal(err)
	}
	waitBanned(t, a, x, false, 2*time.Second)
	waitBanned(t, late, x, false, 2*time.Second)
}

func storeHas(t testing.TB, n *node, addr netip.Addr) bool {
	bans, err := n.g.st.ActiveBans(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range bans {
		if d.Prefix.Contains(addr) {
			return true
		}
	}
	return false
}

func waitConnected(t testing.TB, ns ...*node) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range ns {
		for !n.g.shr.node.Status().Connected {
			if time.Now().After(deadline) {
				t.Fatal("node not connected to Redis")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestClusterFailuresAddUp guesses one account's password from one address
// once on each of three nodes: alone no node reaches the jail's maxretry
// (3), together they do, and every node refuses the guesser. With
// share_failures off the same guesses ban nobody.
func TestClusterFailuresAddUp(t *testing.T) {
	for _, share := range []bool{true, false} {
		t.Run(fmt.Sprintf("share=%v", share), func(t *testing.T) {
			ctx := t.Context()
			p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
			if err != nil {
				t.Fatal(err)
			}
			go p.Run(ctx)
			<-p.Ready()
			r := testpeer.StartRedis(t)
			edit := func(c *config.Config) {
				c.Cluster.ShareFailures = share
				c.Jail.RegisterFailure[0].BanMode = "ip"
			}
			ns := []*node{startNode(t, "a", r.URL(), p.Target(), edit), startNode(t, "b", r.URL(), p.Target(), edit),
				startNode(t, "c", r.URL(), p.Target(), edit)}
			waitConnected(t, ns...)
			waitSubscribed(t, r, ns, share)
			guesser := netip.MustParseAddr("127.0.0.78")
			for i, n := range ns {
				res, err := sim.Cracker{Attack: sim.Attack{Target: n.sip, Source: guesser, Timeout: 300 * time.Millisecond},
					Account: "1001", Domain: p.Realm(), Passwords: []string{fmt.Sprintf("guess%d", i)}}.Run(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if res.Answers[403] != 1 {
					t.Fatalf("guess %d on node %d: %v", i, i, res)
				}
				time.Sleep(50 * time.Millisecond) // let the failure reach the others first
			}
			for _, n := range ns {
				if share {
					waitBanned(t, n, guesser, true, 2*time.Second)
				} else {
					time.Sleep(100 * time.Millisecond)
					if _, ok := n.g.Set().Banned(guesser, time.Now()); ok {
						t.Fatal("banned after one failure per node with share_failures off")
					}
				}
			}
		})
	}
}

// TestClusterFailuresQueuedThroughOutage: Redis is killed, two nodes each
// see one guess (queued, not lost), Redis comes back empty, a third node
// sees one more: the queued failures are added with their own times and
// every node counts three, so every node bans the guesser. A failure older
// than the longest findtime, planted in the stream, counts nowhere.
func TestClusterFailuresQueuedThroughOutage(t *testing.T) {
	ctx := t.Context()
	p, err := pbx.New(pbx.Options{Accounts: map[string]string{"1001": "Vx7#pR2qLm"}})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(ctx)
	<-p.Ready()
	r := testpeer.StartRedis(t)
	edit := func(c *config.Config) { c.Jail.RegisterFailure[0].BanMode = "ip" }
	ns := []*node{startNode(t, "a", r.URL(), p.Target(), edit), startNode(t, "b", r.URL(), p.Target(), edit),
		startNode(t, "c", r.URL(), p.Target(), edit)}
	waitConnected(t, ns...)
	waitSubscribed(t, r, ns, true)
	guesser := netip.MustParseAddr("127.0.0.79")
	guess := func(n *node, i int) {
		t.Helper()
		res, err := sim.Cracker{Attack: sim.Attack{Target: n.sip, Source: guesser, Timeout: 300 * time.Millisecond},
			Account: "1001", Domain: p.Realm(), Passwords: []string{fmt.Sprintf("guess%d", i)}}.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Answers[403] != 1 {
			t.Fatalf("guess %d: %v", i, res)
		}
	}
	// An old failure (two hours ago, beyond every findtime) planted
	// while the nodes listen: ignored by all.
	old := fmt.Sprintf(`{"v":1,"failure":{"time":%q,"source":"127.0.0.79:5060","code":403,"account":"1001"}}`,
		time.Now().Add(-2*time.Hour).Format(time.RFC3339Nano))
	if _, err := r.Do("XADD", "{tollguard}:failures", "*", "n", "evil", "m", old); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	for start := time.Now(); ns[0].g.shr.fails.stream.Connected() || ns[1].g.shr.fails.stream.Connected(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the failure stream still says connected with Redis down")
		}
	}
	guess(ns[0], 0)
	guess(ns[1], 1)
	time.Sleep(100 * time.Millisecond)
	for _, n := range ns[:2] {
		if q := n.g.shr.fails.stream.Queued(); q != 1 {
			t.Errorf("queued failures with Redis down: %d, want 1", q)
		}
	}
	r.Start()
	for start := time.Now(); ns[0].g.shr.fails.stream.Queued()+ns[1].g.shr.fails.stream.Queued() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("queued failures not sent after Redis came back")
		}
	}
	time.Sleep(100 * time.Millisecond)
	for _, n := range ns {
		if _, ok := n.g.Set().Banned(guesser, time.Now()); ok {
			t.Fatal("banned after two failures (the planted old one counted?)")
		}
	}
	guess(ns[2], 2)
	for _, n := range ns {
		waitBanned(t, n, guesser, true, 3*time.Second)
	}
}

// waitSubscribed waits until all three nodes read the failure and call
// streams, then adds garbage to both (hostile entries: bad JSON, a bad
// node name, a message from the future) that every node must skip.
func waitSubscribed(t testing.TB, r *testpeer.Redis, ns []*node, share bool) {
	t.Helper()
	if !share {
		return
	}
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		up := true
		for _, n := range ns {
			up = up && n.g.shr.fails.stream.Connected() && n.g.shr.calls.stream.Connected()
		}
		if up {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("nodes not reading the cluster streams")
		}
	}
	future := fmt.Sprintf(`{"v":1,"failure":{"time":%q,"source":"127.0.0.78:5060","code":403,"account":"1001"}}`,
		time.Now().Add(time.Hour).Format(time.RFC3339Nano))
	for _, e := range [][]string{{"n", "evil", "m", "not json"}, {"n", "bad name!", "m", "{}"}, {"n", "evil", "m", future},
		{"n", "evil", "m", strings.Repeat("x", 5000)}} {
		if _, err := r.Do(append([]string{"XADD", "{tollguard}:failures", "*"}, e...)...); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Do(append([]string{"XADD", "{tollguard}:calls", "*"}, e...)...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIntelFeedAndExport serves a CIDR list over HTTP: its entries are
// banned with their origin, never the allowed one; the CrowdSec stream
// serves an operator ban to a bouncer key from <data_dir>/bouncer_keys and
// refuses a wrong key.
func TestIntelFeedAndExport(t *testing.T) {
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "# drop\n45.83.2.0/24 ; SBL1\n45.83.9.1\n185.7.7.7\n")
	}))
	defer feed.Close()
	dir := t.TempDir()
	const key = "bouncer-key-0123456789"
	if err := os.WriteFile(filepath.Join(dir, bouncerKeysFile), []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, "solo", "", "udp://127.0.0.1:9", func(c *config.Config) {
		c.DataDir = dir
		c.Intel.Feeds = append(c.Intel.Feeds, intelFeed("drop", feed.URL))
	})
	waitBanned(t, n, netip.MustParseAddr("45.83.2.9"), true, 5*time.Second)
	waitBanned(t, n, netip.MustParseAddr("185.7.7.7"), true, time.Second)
	if d, _ := n.g.Set().Banned(netip.MustParseAddr("185.7.7.7"), time.Now()); d.Origin != "intel:drop" {
		t.Errorf("feed ban origin %q", d.Origin)
	}
	if _, ok := n.g.Set().Banned(netip.MustParseAddr("45.83.9.1"), time.Now()); ok {
		t.Error("the feed banned an allowed address")
	}

	operatorBan(t, n, netip.MustParseAddr("45.83.1.9"))
	get := func(k string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+n.g.AdminAddr().String()+"/crowdsec/v1/decisions/stream?startup=true", nil)
		req.Header.Set("X-Api-Key", k)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(key); code != 200 || !strings.Contains(body, `"value":"45.83.1.9"`) || strings.Contains(body, "185.7.7.7") {
		t.Errorf("stream = %d %s; want the operator ban and no feed ban", code, body)
	}
	if code, _ := get("wrong-key-0123456789"); code != 403 {
		t.Errorf("wrong key: %d, want 403", code)
	}
	plain := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+n.g.AdminAddr().String()+"/api/v1/intel/bans.txt", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := plain(""); code != http.StatusUnauthorized {
		t.Errorf("bans.txt without the admin token: %d, want 401", code)
	}
	tok, err := os.ReadFile(n.g.api.TokenPath())
	if err != nil {
		t.Fatal(err)
	}
	if code, body := plain(strings.TrimSpace(string(tok))); code != 200 || body != "45.83.1.9\n" {
		t.Errorf("bans.txt = %d %q, want the operator ban alone", code, body)
	}
}

func intelFeed(name, url string) intel.FeedConfig {
	return intel.FeedConfig{Name: name, URL: url, Format: intel.FormatCIDR, Refresh: time.Minute}
}

// BenchmarkClusterPropagation measures an operator ban on guard a until it
// is in force (in the ban set) on guards b and c, through a real
// redis-server on loopback, the whole daemon wiring included. It reports
// the p50 and p99 of those times, from the API call (the store commit on a
// included) and from the moment a's ban is committed and in force there.
func BenchmarkClusterPropagation(b *testing.B) {
	r := testpeer.StartRedis(b)
	a := startNode(b, "a", r.URL(), "udp://127.0.0.1:9", nil)
	nb := startNode(b, "b", r.URL(), "udp://127.0.0.1:9", nil)
	nc := startNode(b, "c", r.URL(), "udp://127.0.0.1:9", nil)
	waitConnected(b, a, nb, nc)
	var took, after []time.Duration
	i := 0
	for b.Loop() {
		i++
		x := netip.AddrFrom4([4]byte{45, 84, byte(i >> 8), byte(i)})
		start := time.Now()
		operatorBan(b, a, x)
		committed := time.Now()
		for _, n := range []*node{nb, nc} {
			for {
				if _, ok := n.g.Set().Banned(x, time.Now()); ok {
					break
				}
				if time.Since(start) > 2*time.Second {
					b.Fatalf("ban %d not propagated", i)
				}
				runtime.Gosched()
			}
			took = append(took, time.Since(start))
			after = append(after, time.Since(committed))
		}
	}
	slices.Sort(took)
	slices.Sort(after)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(took[len(took)-1].Microseconds()), "max-µs")
	b.ReportMetric(float64(after[len(after)/2].Microseconds()), "p50-after-commit-µs")
	b.ReportMetric(float64(after[len(after)*99/100].Microseconds()), "p99-after-commit-µs")
}
