package integration

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// percentile returns the p-th percentile (0-100) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// redisCost reports the Redis commands run between before and now, per op:
// the total and the XADD and XREAD calls (INFO commandstats, less the INFO
// calls themselves).
func redisCost(b *testing.B, r *testpeer.Redis, before map[string]int64, n float64, unit string) {
	b.Helper()
	after, err := r.CommandStats()
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for k, v := range after {
		if k != "info" {
			total += v - before[k]
		}
	}
	b.ReportMetric(float64(total)/n, "redis-cmds/"+unit)
	b.ReportMetric(float64(after["xadd"]-before["xadd"])/n, "xadd/"+unit)
	b.ReportMetric(float64(after["xread"]-before["xread"])/n, "xread/"+unit)
}

// BenchmarkClusterProcesses measures three tollguard processes sharing one
// redis-server (issue 16), in front of Kamailio. Record it with:
//
//	go test -run '^$' -bench ClusterProcesses -benchtime 200x ./test/integration/
//
// (-count 1: the propagation sub-benchmark would ban its addresses again;
// run the command again instead.)
//
//   - propagation: an operator ban on a (POST /api/v1/bans, public
//     addresses: the cluster refuses loopback bans); the time from the
//     ban's decision time to b's and c's "ban from the cluster" log line
//     (millisecond resolution), p50 and p99 over every (ban, node).
//   - probe/cluster=off|on: one OPTIONS from a source with no history,
//     answered through the guard, round trip p50/p99 with the cluster
//     off (a lone guard) and on; with it on, the Redis commands the whole
//     cluster ran per probe (INFO total_commands_processed before and
//     after: the idle readers' blocking XREADs and pings included).
//   - failure: one wrong password (REGISTER, 401, REGISTER, 403) from
//     sources with no history, 2 per source (under maxretry); the Redis
//     commands per failure a counted (tollguard_engine_auth_failures_total),
//     with the XADDs and the other nodes' XREADs.
func BenchmarkClusterProcesses(b *testing.B) {
	k := testpeer.StartKamailio(b, testpeer.KamailioOptions{Users: users})
	r := testpeer.StartRedis(b)
	// flood.limit raised: the probes come from one source, faster than a
	// phone would send; the distributed rule's thresholds too, so the
	// guesses from many sources on 1001 reach the PBX (no account lock).
	const noFlood = "flood: {limit: 1000000}\ndistributed: {findtime: 10m, max_sources: 100000, locktime: 30m, new_sources: 100000, remember: 30d}\n"
	gs := clusterGuards(b, 3, r.URL(), k.Addr, noFlood)
	waitStreams(b, gs, 10*time.Second)
	a := gs[0]

	next := 0 // addresses are never banned twice (b.N=1 runs first)
	b.Run("propagation", func(b *testing.B) {
		if next+b.N > 200*250 {
			b.Fatal("more bans than addresses")
		}
		targets := make([]netip.Addr, 0, b.N)
		for range b.N {
			ip := netip.AddrFrom4([4]byte{45, byte(10 + next/250), 83, byte(1 + next%250)})
			next++
			targets = append(targets, ip)
			if code, err := a.Post("/api/v1/bans", map[string]string{"ip": ip.String(), "for": "1h"}); err != nil || code != 201 {
				b.Fatalf("ban %s: %d %v", ip, code, err)
			}
		}
		b.StopTimer()
		for _, g := range gs[1:] {
			if len(g.WaitBanned(targets[len(targets)-1], 10*time.Second)) == 0 {
				b.Fatalf("%s did not get the last ban", g.Name)
			}
		}
		bans, err := a.Bans()
		if err != nil {
			b.Fatal(err)
		}
		at := map[string]time.Time{}
		for _, bn := range bans {
			at[bn.Prefix] = bn.At
		}
		var lags []time.Duration
		for _, g := range gs[1:] {
			for _, ip := range targets {
				recv := g.LogTimes(`msg="ban from the cluster"`, "target="+ip.String()+" ")
				made, ok := at[ip.String()+"/32"]
				if len(recv) == 0 || !ok {
					b.Fatalf("%s: no ban from the cluster logged for %s (made %v)", g.Name, ip, ok)
				}
				lags = append(lags, recv[0].Sub(made))
			}
		}
		slices.Sort(lags)
		b.ReportMetric(float64(percentile(lags, 50).Microseconds()), "p50-µs")
		b.ReportMetric(float64(percentile(lags, 99).Microseconds()), "p99-µs")
		b.ReportMetric(float64(lags[len(lags)-1].Microseconds()), "max-µs")
	})

	probe := func(b *testing.B, g *testpeer.Guard, src netip.Addr) {
		lat := make([]time.Duration, 0, b.N)
		before, err := r.CommandStats()
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			start := time.Now()
			if code, err := testpeer.Probe(src, g.SIP(), 2*time.Second); err != nil || code != 200 {
				b.Fatalf("OPTIONS through %s: %d %v", g.Name, code, err)
			}
			lat = append(lat, time.Since(start))
		}
		b.StopTimer()
		slices.Sort(lat)
		b.ReportMetric(float64(percentile(lat, 50).Microseconds()), "p50-µs")
		b.ReportMetric(float64(percentile(lat, 99).Microseconds()), "p99-µs")
		if g.Name != "solo" {
			redisCost(b, r, before, float64(b.N), "req")
		}
	}
	soloAddr := testpeer.LoopbackAddr(b)
	solo := testpeer.StartGuard(b, testpeer.GuardOptions{Bin: tollguardBin, Name: "solo", Addr: soloAddr, Config: fmt.Sprintf(
		"log: {level: debug}\nsip:\n  listen: [%q]\n  upstream: %q\n%s%s%s", "udp://"+netip.AddrPortFrom(soloAddr, 5060).String(), "udp://"+k.Addr.String(),
		defaultJail, greylistOff, noFlood)})
	src := testpeer.LoopbackAddr(b)
	b.Run("probe/cluster=off", func(b *testing.B) { probe(b, solo, src) })
	b.Run("probe/cluster=on", func(b *testing.B) { probe(b, a, src) })

	b.Run("failure", func(b *testing.B) {
		srcs := make([]netip.Addr, (b.N+1)/2)
		for i := range srcs {
			srcs[i] = testpeer.LoopbackAddr(b)
		}
		before, err := r.CommandStats()
		if err != nil {
			b.Fatal(err)
		}
		fails0, _ := a.Metric("tollguard_engine_auth_failures_total", "")
		b.ResetTimer()
		for i := range b.N {
			res, err := sim.Cracker{Attack: sim.Attack{Target: a.SIP(), Source: srcs[i/2], Timeout: 2 * time.Second}, Account: "1001",
				Domain: k.Realm, UserAgent: disguise, Passwords: []string{fmt.Sprint("wrong", i)}}.Run(b.Context())
			if err != nil || res.Answers[403] != 1 {
				b.Fatalf("guess %d: %v %v", i, res, err)
			}
		}
		b.StopTimer()
		time.Sleep(200 * time.Millisecond) // the other nodes' reads
		fails, err := a.Metric("tollguard_engine_auth_failures_total", "")
		if err != nil || fails-fails0 < 1 {
			b.Fatalf("a counted %v failures (%v)", fails-fails0, err)
		}
		redisCost(b, r, before, fails-fails0, "failure")
		b.ReportMetric(fails-fails0, "failures")
	})
}
