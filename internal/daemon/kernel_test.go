package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"github.com/tollguard/tollguard/internal/testkit"
)

// The daemon's kernel enforcement, in a network namespace of its own: a
// proven ban from the Event Socket lands in the kernel set, an unproven one
// (UDP failures) and an ip_account one stay inline, an unban removes the
// element, and a restart rebuilds the set from the store, without the
// addresses the allow list now covers.
func TestKernelEnforcement(t *testing.T) {
	if !testkit.InNetns(t) {
		return
	}
	const table = "tgtest"
	srv := esltest.New(t, "ClueCon")
	cfg := sidecarConfig(t, srv)
	cfg.NFTables = config.NFTables{Enabled: true, Table: table}
	cfg.Jail.RegisterFailure[0].BanMode = "ip"
	kernelSet := func() string { return testkit.NFT(t, "", "list", "set", "inet", table, "ban4") }
	inKernel := func(ip string) bool {
		return strings.Contains(kernelSet(), ip+" ") || strings.Contains(kernelSet(), ip+"\n")
	}

	ctx, stop := context.WithCancel(t.Context())
	g, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler), SourceBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	<-g.Ready()
	sc := <-srv.Subscribed

	// Proven: FreeSWITCH's register_failure events (no transport).
	now := time.Now()
	for range 3 {
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "x", "REGISTER"), now)))
	}
	waitFor(t, "the proven ban in the kernel", func() bool { return inKernel("198.51.100.7") })

	// Unproven: the same failures over UDP, through the same path.
	forged := netip.MustParseAddr("198.51.100.8")
	for range 3 {
		g.judge(t.Context(), &event.AuthFailure{Meta: event.Meta{Time: time.Now(), Source: netip.AddrPortFrom(forged, 5060), Transport: "udp"},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1002", HasCredentials: true, AuthUser: "1002"}, Account: "1002", Code: 403})
	}
	d, ok := g.Set().Banned(forged, time.Now())
	if !ok || !d.Unproven {
		t.Fatalf("UDP failures: %+v %v; want an unproven inline ban", d, ok)
	}
	// An ip_account ban (one phone's account) is not the kernel's either.
	acct := decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(netip.MustParseAddr("198.51.100.12")),
		Account: "1003", Rule: "test", At: time.Now(), Until: time.Now().Add(time.Hour)}
	g.kern.Apply(acct)
	// An operator's ban is proven: it goes to the kernel, after the others.
	if _, err := (banService{g}).Ban(t.Context(), api.BanRequest{IP: netip.MustParseAddr("198.51.100.9"), For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := (banService{g}).Ban(t.Context(), api.BanRequest{IP: netip.MustParseAddr("198.51.100.11"), For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the operator's bans in the kernel", func() bool { return inKernel("198.51.100.9") && inKernel("198.51.100.11") })
	for _, ip := range []string{"198.51.100.8", "198.51.100.12", "127.0.0.1"} {
		if inKernel(ip) {
			t.Errorf("%s reached the kernel:\n%s", ip, kernelSet())
		}
	}
	if n := metric(t, g.Registry(), "tollguard_nftables_skipped_total", map[string]string{"reason": "unproven"}); n < 1 {
		t.Errorf("skipped{unproven} = %v", n)
	}

	if _, err := (banService{g}).Unban(t.Context(), netip.MustParseAddr("198.51.100.7"), "", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the unban in the kernel", func() bool { return !inKernel("198.51.100.7") })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !inKernel("198.51.100.9") {
		t.Fatal("the bans did not outlive the daemon")
	}

	// A restart after the table was lost (a reboot, `nft flush ruleset`),
	// with 198.51.100.11 now in the allow list.
	testkit.NFT(t, "", "delete", "table", "inet", table)
	cfg.Allow = append(cfg.Allow, config.Prefix(netip.MustParsePrefix("198.51.100.11/32")))
	g2 := startDaemon(t, cfg, nil)
	if !inKernel("198.51.100.9") {
		t.Errorf("restart did not rebuild the set:\n%s", kernelSet())
	}
	for _, ip := range []string{"198.51.100.7", "198.51.100.8", "198.51.100.11"} {
		if inKernel(ip) {
			t.Errorf("%s in the rebuilt set:\n%s", ip, kernelSet())
		}
	}
	if _, ok := g2.Set().Banned(forged, time.Now()); !ok {
		t.Error("the unproven ban was not restored inline")
	}
}
