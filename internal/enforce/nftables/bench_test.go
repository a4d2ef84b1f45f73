package nftables

import (
	"github.com/tollguard/tollguard/internal/testkit"
	"net/netip"
	"os"
	"testing"
	"time"
)

// Benchmarks need a private network namespace; run them with
//
//	unshare -n env TOLLGUARD_NFT_NETNS=1 go test -run '^$' -bench . ./internal/enforce/nftables/
func benchNetns(b *testing.B) {
	if os.Getenv(testkit.NetnsEnv) != "1" {
		b.Skipf("run under: unshare -n env %s=1 go test -run '^$' -bench . ./internal/enforce/nftables/", testkit.NetnsEnv)
	}
	testkit.SetupNetns(b)
}

// BenchmarkBanToDrop is the time from a Ban call to the kernel dropping
// the address: Ban returns when the kernel has committed the transaction,
// and from then on packets from the address are dropped (the tests show a
// packet sent right after Ban is dropped).
func BenchmarkBanToDrop(b *testing.B) {
	benchNetns(b)
	e, err := Open(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Remove()
	defer e.Close()
	ip := netip.MustParseAddr("10.0.0.0")
	b.ReportAllocs()
	for b.Loop() {
		ip = ip.Next()
		if _, err := e.Ban(Ban{Addr: ip, Until: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSync100k loads 100,000 stored bans at start in one transaction.
func BenchmarkSync100k(b *testing.B) {
	benchNetns(b)
	e, err := Open(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Remove()
	defer e.Close()
	bans := make([]Ban, 100_000)
	ip := netip.MustParseAddr("10.0.0.0")
	until := time.Now().Add(time.Hour)
	for i := range bans {
		ip = ip.Next()
		bans[i] = Ban{Addr: ip, Until: until}
	}
	b.ReportAllocs()
	for b.Loop() {
		if n, err := e.Sync(bans); err != nil || n != len(bans) {
			b.Fatalf("Sync = %d, %v", n, err)
		}
	}
	got, err := e.Banned()
	if err != nil || len(got) != len(bans) {
		b.Fatalf("Banned = %d, %v", len(got), err)
	}
}
