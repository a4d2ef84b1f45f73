package cluster

import (
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/testpeer"
)

func TestBanReachesEveryNode(t *testing.T) {
	r := startRedis(t)
	a, b, c := startNode(t, r.URL(), "a"), startNode(t, r.URL(), "b"), startNode(t, r.URL(), "c")
	waitConnected(t, a, b, c)

	d := ipBan("192.0.2.10", time.Hour)
	atB, atC := b.expect(d.Key()), c.expect(d.Key())
	a.ban(d)
	for name, ch := range map[string]<-chan struct{}{"b": atB, "c": atC} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("node %s never received the ban", name)
		}
	}
	got, ok := b.set.Banned(netip.MustParseAddr("192.0.2.10"), time.Now())
	if !ok || got.Origin != "cluster:a" || got.Rule != "jail" || !got.Until.Equal(d.Until) {
		t.Fatalf("on b: %+v, %v; want origin cluster:a, rule jail, until %v", got, ok, d.Until)
	}

	// No echo: b and c applied it but published nothing, and a received
	// nothing back.
	time.Sleep(100 * time.Millisecond)
	for _, n := range []*testNode{b, c} {
		if v := metric(t, n.m.published); v != 0 {
			t.Errorf("%s re-published %v decisions", n.cfg.Node, v)
		}
	}
	if v := metric(t, a.m.received); v != 0 {
		t.Errorf("a received %v decisions back", v)
	}
	if v := metric(t, a.m.published); v != 1 {
		t.Errorf("a published %v decisions, want 1", v)
	}

	// An unban travels the same way and leaves Redis clean.
	u := d
	u.Type = decision.TypeUnban
	gone := b.expect(u.Key())
	a.ban(u)
	<-gone
	if banned(b, "192.0.2.10") {
		t.Fatal("b still bans the address after the unban")
	}
	if n, err := r.Do("HLEN", "{tollguard}:bans"); err != nil || n != ":0" {
		t.Fatalf("HLEN after unban = %q, %v; want :0", n, err)
	}
}

func TestIPUnbanClearsAccountBansInRedis(t *testing.T) {
	r := startRedis(t)
	a := startNode(t, r.URL(), "a")
	waitConnected(t, a)
	pair := ipBan("192.0.2.11", time.Hour)
	pair.Scope, pair.Account = decision.ScopeIPAccount, "1001"
	other := ipBan("192.0.2.12", time.Hour)
	a.ban(pair)
	a.ban(other)
	eventually(t, "two bans stored", func() bool { n, _ := r.Do("HLEN", "{tollguard}:bans"); return n == ":2" })
	u := ipBan("192.0.2.11", time.Hour)
	u.Type = decision.TypeUnban
	a.ban(u)
	eventually(t, "account ban of the unbanned address removed", func() bool {
		n, _ := r.Do("HLEN", "{tollguard}:bans")
		return n == ":1"
	})
	if n, _ := r.Do("ZCARD", "{tollguard}:bans:until"); n != ":1" {
		t.Fatalf("ZCARD = %s, want :1", n)
	}
}

func TestLateNodeLoadsBansInForce(t *testing.T) {
	r := startRedis(t)
	a := startNode(t, r.URL(), "a")
	waitConnected(t, a)
	a.ban(ipBan("192.0.2.20", time.Hour))
	a.ban(ipBan("2001:db8::20", time.Hour))
	short := ipBan("192.0.2.21", 300*time.Millisecond)
	a.ban(short)
	acct := decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeAccount, Account: "1002",
		Origin: decision.OriginAdmin, Rule: "admin", At: time.Now(), Until: time.Now().Add(time.Hour)}
	a.ban(acct)
	eventually(t, "four bans stored", func() bool { n, _ := r.Do("HLEN", "{tollguard}:bans"); return n == ":4" })
	time.Sleep(time.Until(short.Until) + 50*time.Millisecond)

	late := startNode(t, r.URL(), "late")
	waitConnected(t, late)
	if !banned(late, "192.0.2.20") || !banned(late, "2001:db8::20") {
		t.Fatal("the late node did not load the bans in force")
	}
	if _, ok := late.set.AccountLocked("1002", time.Now()); !ok {
		t.Fatal("the late node did not load the account ban")
	}
	if banned(late, "192.0.2.21") {
		t.Fatal("the late node applied an expired ban")
	}
	// The expired entry was purged from Redis on connect.
	if n, _ := r.Do("HLEN", "{tollguard}:bans"); n != ":3" {
		t.Fatalf("HLEN = %s after purge, want :3", n)
	}
}

func TestRedisDownNodesGoOnAloneAndReconcile(t *testing.T) {
	r := startRedis(t)
	a, b := startNode(t, r.URL(), "a"), startNode(t, r.URL(), "b")
	waitConnected(t, a, b)
	before := ipBan("192.0.2.30", time.Hour)
	got := b.expect(before.Key())
	a.ban(before)
	<-got

	r.Stop()
	for _, n := range []*testNode{a, b} {
		eventually(t, n.cfg.Node+" notices redis is down", func() bool { return !n.Status().Connected })
		if v := metric(t, n.m.connected); v != 0 {
			t.Fatalf("%s: connected gauge %v while redis is down", n.cfg.Node, v)
		}
		if s := n.Status(); s.LastError == "" {
			t.Fatalf("%s: status carries no error while down: %+v", n.cfg.Node, s)
		}
	}
	// Both keep banning locally.
	fromA, fromB := ipBan("192.0.2.31", time.Hour), ipBan("192.0.2.32", time.Hour)
	a.ban(fromA)
	b.ban(fromB)
	if !banned(a, "192.0.2.31") || !banned(b, "192.0.2.32") {
		t.Fatal("a node stopped banning locally while redis is down")
	}
	if s := a.Status(); s.Pending != 1 {
		t.Fatalf("a: pending %d while down, want 1", s.Pending)
	}

	// Redis comes back empty (no persistence): the nodes push what they
	// decided, pull the others', and a node started now sees everything.
	r.Start()
	waitConnected(t, a, b)
	eventually(t, "a pulls b's ban", func() bool { return banned(a, "192.0.2.32") })
	eventually(t, "b pulls a's ban", func() bool { return banned(b, "192.0.2.31") })
	c := startNode(t, r.URL(), "c")
	waitConnected(t, c)
	eventually(t, "c sees the bans made before, during and after the outage", func() bool {
		return banned(c, "192.0.2.30") && banned(c, "192.0.2.31") && banned(c, "192.0.2.32")
	})
	if a.Status().Pending != 0 {
		t.Fatalf("a still has %d pending after reconnecting", a.Status().Pending)
	}
	if v := metric(t, a.m.disconnects); v < 1 {
		t.Fatalf("disconnects = %v, want ≥ 1", v)
	}
}

func TestHostileRedisData(t *testing.T) {
	r := startRedis(t)
	now := time.Now()
	until := now.Add(time.Hour).Format(time.RFC3339Nano)
	at := now.Format(time.RFC3339Nano)
	entry := func(node, scope, prefix string) string {
		return `{"v":1,"node":"` + node + `","decision":{"type":"ban","scope":"` + scope + `","prefix":"` + prefix +
			`","origin":"engine","rule":"x","at":"` + at + `","until":"` + until + `"}}`
	}
	plant := map[string]string{
		"junk":    "not json at all",
		"huge":    `{"v":1,"node":"evil","decision":{"type":"ban","scope":"ip","prefix":"192.0.2.50/32","reason":"` + strings.Repeat("x", 5000) + `"}}`,
		"version": strings.Replace(entry("evil", "ip", "192.0.2.51/32"), `"v":1`, `"v":9`, 1),
		"badnode": entry("../../etc", "ip", "192.0.2.52/32"),
		"scope":   entry("evil", "everything", "192.0.2.53/32"),
		"allow":   entry("evil", "ip", "198.18.0.5/32"),    // in the allow list
		"world":   entry("evil", "prefix", "0.0.0.0/0"),    // the whole internet
		"wide6":   entry("evil", "prefix", "2000::/3"),     // too broad
		"loop":    entry("evil", "ip", "127.0.0.1/32"),     // reserved
		"good":    entry("peer", "ip", "192.0.2.60/32"),    // a real ban
		"goodnet": entry("peer", "prefix", "192.0.2.0/24"), // a real network ban
	}
	for f, v := range plant {
		if _, err := r.Do("HSET", "{tollguard}:bans", f, v); err != nil {
			t.Fatal(err)
		}
	}
	n := startNode(t, r.URL(), "a")
	waitConnected(t, n)
	if !banned(n, "192.0.2.60") || !banned(n, "192.0.2.1") {
		t.Fatal("valid bans next to hostile ones were not applied")
	}
	for _, addr := range []string{"198.18.0.5", "8.8.8.8", "2001:db8::1", "127.0.0.1"} {
		if banned(n, addr) {
			t.Errorf("a hostile entry banned %s", addr)
		}
	}
	if v := metric(t, n.m.rejected.WithLabelValues("malformed")); v != 5 {
		t.Errorf("malformed = %v, want 5", v)
	}
	if v := metric(t, n.m.rejected.WithLabelValues("refused")); v != 4 {
		t.Errorf("refused = %v, want 4", v)
	}
	// Garbage published on the channel is counted too, and the node stays
	// up and keeps applying real bans.
	if _, err := r.Do("PUBLISH", "{tollguard}:bans:events", "\x00\xff garbage"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "published garbage counted", func() bool {
		return metric(t, n.m.rejected.WithLabelValues("malformed")) == 6
	})
	if _, err := r.Do("PUBLISH", "{tollguard}:bans:events", entry("peer", "ip", "192.0.2.61/32")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a real ban after the garbage", func() bool { return banned(n, "192.0.2.61") })
	if !n.Status().Connected {
		t.Fatal("hostile data disconnected the node")
	}
}

func TestApplyIgnoresWhatMustNotBeShared(t *testing.T) {
	n, err := New(Options{Config: Config{Redis: "redis://127.0.0.1:1", Node: "a"}, Apply: decision.ApplierFunc(func(decision.Decision) {})})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	received := ipBan("192.0.2.70", time.Hour)
	received.Origin = "cluster:b"
	feed := ipBan("192.0.2.71", time.Hour)
	feed.Origin = "intel:apiban"
	expired := ipBan("192.0.2.72", -time.Second)
	for _, d := range []decision.Decision{received, feed, expired} {
		n.Apply(d)
	}
	if p := n.Status().Pending; p != 0 {
		t.Fatalf("pending = %d, want 0: received, feed and expired bans are not shared", p)
	}
	n.Apply(ipBan("192.0.2.73", time.Hour))
	if p := n.Status().Pending; p != 1 {
		t.Fatalf("pending = %d, want 1", p)
	}
}

func TestPendingIsBounded(t *testing.T) {
	n, err := New(Options{Config: Config{Redis: "redis://127.0.0.1:1", Node: "a", PendingMax: 2},
		Apply: decision.ApplierFunc(func(decision.Decision) {})})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		n.Apply(ipBan(a, time.Hour))
	}
	n.Apply(ipBan("192.0.2.1", 2*time.Hour)) // replaces, not added
	if p := n.Status().Pending; p != 2 {
		t.Fatalf("pending = %d, want 2", p)
	}
	if v := metric(t, n.m.dropped); v != 1 {
		t.Fatalf("dropped = %v, want 1", v)
	}
}

func TestBanLiftedWhileAwayIsLiftedOnReconnect(t *testing.T) {
	r := startRedis(t)
	a, b := startNode(t, r.URL(), "a"), startNode(t, r.URL(), "b")
	waitConnected(t, a, b)
	x, y := ipBan("192.0.2.80", time.Hour), ipBan("192.0.2.81", time.Hour)
	got := b.expect(y.Key())
	a.ban(x)
	a.ban(y)
	<-got
	eventually(t, "b has both", func() bool { return banned(b, "192.0.2.80") && banned(b, "192.0.2.81") })

	b.pause()
	u := x
	u.Type = decision.TypeUnban
	a.ban(u)
	eventually(t, "unban stored", func() bool { n, _ := r.Do("HLEN", "{tollguard}:bans"); return n == ":1" })
	if !banned(b, "192.0.2.80") {
		t.Fatal("b heard the unban while not listening")
	}
	b.resume()
	waitConnected(t, b)
	eventually(t, "b lifts the ban lifted while it was away", func() bool { return !banned(b, "192.0.2.80") })
	if !banned(b, "192.0.2.81") {
		t.Fatal("b lost a ban still in force")
	}
}

// TestSentinelAndClusterURLs runs ban propagation through a Sentinel (the
// nodes find the master through it) and through a one-shard Redis Cluster
// (cluster mode on, every slot on one server), using the URL forms the
// configuration documents.
func TestSentinelAndClusterURLs(t *testing.T) {
	t.Run("sentinel", func(t *testing.T) {
		master := startRedis(t)
		sentinel := testpeer.StartSentinel(t, master, "tg")
		url := "redis+sentinel://" + sentinel.Addr + "?master_name=tg"
		propagates(t, url)
	})
	t.Run("cluster", func(t *testing.T) {
		host := testpeer.LoopbackAddr(t).String()
		r := testpeer.StartRedisOn(t, host, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-announce-ip", host)
		if _, err := r.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "cluster state ok", func() bool {
			s, _ := r.Do("CLUSTER", "INFO")
			return strings.Contains(s, "cluster_state:ok")
		})
		propagates(t, "redis+cluster://"+r.Addr)
	})
}

func propagates(t *testing.T, url string) {
	t.Helper()
	a, b := startNode(t, url, "a"), startNode(t, url, "b")
	waitConnected(t, a, b)
	d := ipBan("192.0.2.90", time.Hour)
	got := b.expect(d.Key())
	a.ban(d)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("ban never reached b through %s", url)
	}
	late := startNode(t, url, "late")
	waitConnected(t, late)
	if !banned(late, "192.0.2.90") {
		t.Fatalf("a late node did not load the ban through %s", url)
	}
}

func TestReconnectDoesNotRepublishWhatRedisHolds(t *testing.T) {
	r := startRedis(t)
	a := startNode(t, r.URL(), "a")
	waitConnected(t, a)
	a.ban(ipBan("192.0.2.100", time.Hour))
	eventually(t, "published", func() bool { return metric(t, a.m.published) == 1 })
	a.pause()
	a.resume()
	waitConnected(t, a)
	if v := metric(t, a.m.published); v != 1 {
		t.Fatalf("published %v after a reconnect, want 1: Redis still held the ban", v)
	}
}

func TestRemoteBansAreCapped(t *testing.T) {
	r := startRedis(t)
	a := startNode(t, r.URL(), "a")
	b := startNode(t, r.URL(), "b", func(o *Options) { o.Config.MaxRemoteBans = 2 })
	waitConnected(t, a, b)
	a.ban(ipBan("192.0.2.101", time.Hour))
	a.ban(ipBan("192.0.2.102", time.Hour))
	eventually(t, "two bans received", func() bool { return metric(t, b.m.received) == 2 })
	a.ban(ipBan("192.0.2.103", time.Hour))
	eventually(t, "third ban refused", func() bool { return metric(t, b.m.rejected.WithLabelValues("over_cap")) == 1 })
	if b.set.Len() != 2 {
		t.Fatalf("b holds %d bans, want 2", b.set.Len())
	}
	// A ban already held may still be renewed.
	a.ban(ipBan("192.0.2.101", 2*time.Hour))
	eventually(t, "renewal applied", func() bool { return metric(t, b.m.received) == 3 })
}

func TestDefaultScreen(t *testing.T) {
	r := startRedis(t)
	at := time.Now().Format(time.RFC3339Nano)
	until := time.Now().Add(time.Hour).Format(time.RFC3339Nano)
	if _, err := r.Do("HSET", "{tollguard}:bans", "w", `{"v":1,"node":"evil","decision":{"type":"ban","scope":"prefix","prefix":"0.0.0.0/1","at":"`+at+`","until":"`+until+`"}}`); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, r.URL(), "a", func(o *Options) { o.Screen = nil })
	waitConnected(t, n)
	if banned(n, "8.8.8.8") || metric(t, n.m.rejected.WithLabelValues("refused")) != 1 {
		t.Fatal("without a Screen option a /1 from Redis was applied")
	}
}

func TestUnreachableAtStartIsLoggedOnce(t *testing.T) {
	var buf syncBuffer
	r := startRedis(t)
	r.Stop()
	n := startNode(t, r.URL(), "a", func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	eventually(t, "a few retries", func() bool {
		return strings.Count(buf.String(), "cannot reach redis") >= 1 && n.Status().LastError != ""
	})
	time.Sleep(300 * time.Millisecond) // several more retries at 20-200 ms
	if c := strings.Count(buf.String(), "cannot reach redis"); c != 1 {
		t.Fatalf("logged %d times, want once per outage:\n%s", c, buf.String())
	}
	r.Start()
	waitConnected(t, n)
	if !strings.Contains(buf.String(), "connected to redis") {
		t.Fatalf("recovery not logged:\n%s", buf.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
