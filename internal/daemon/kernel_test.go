package daemon

import (
	"context"
	"log/slog"
	"net/netip"
	"regexp"
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

// The daemon's kernel enforcement beside FreeSWITCH, in a network namespace
// of its own. With no inline listener the kernel is the only enforcer, so
// bans of unproven sources go there too — the Event Socket's failures (it
// names no transport) and UDP ones — capped at unproven.maxtime; an
// ip_account ban stays inline; an operator's ban is proven and keeps its
// length; an unban removes the element, and a restart rebuilds the set from
// the store, without the addresses the allow list now covers. (Inline mode,
// where unproven bans stay out of the kernel: TestKernelEligible.)
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

	// FreeSWITCH's register_failure events (no transport): unproven, but
	// the kernel's in sidecar mode.
	now := time.Now()
	for range 3 {
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "x", "REGISTER"), now)))
	}
	waitFor(t, "the Event Socket's ban in the kernel", func() bool { return inKernel("198.51.100.7") })

	// The same failures over UDP, through the same path.
	forged := netip.MustParseAddr("198.51.100.8")
	for range 3 {
		g.judge(t.Context(), &event.AuthFailure{Meta: event.Meta{Time: time.Now(), Source: netip.AddrPortFrom(forged, 5060), Transport: "udp"},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1002", HasCredentials: true, AuthUser: "1002"}, Account: "1002", Code: 403})
	}
	d, ok := g.Set().Banned(forged, time.Now())
	if !ok || !d.Unproven {
		t.Fatalf("UDP failures: %+v %v; want an unproven ban", d, ok)
	}
	waitFor(t, "the UDP ban in the kernel", func() bool { return inKernel("198.51.100.8") })
	for _, ip := range []string{"198.51.100.7", "198.51.100.8"} {
		m := regexp.MustCompile(regexp.QuoteMeta(ip) + ` timeout (\S+)`).FindStringSubmatch(kernelSet())
		if m == nil {
			t.Fatalf("no timeout for %s:\n%s", ip, kernelSet())
		}
		if d, err := time.ParseDuration(strings.TrimSuffix(m[1], ",")); err != nil || d > cfg.Unproven.MaxTime.D() {
			t.Errorf("%s in the kernel for %s (%v), want at most unproven.maxtime %s", ip, m[1], err, cfg.Unproven.MaxTime.D())
		}
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
	for _, ip := range []string{"198.51.100.12", "127.0.0.1"} {
		if inKernel(ip) {
			t.Errorf("%s reached the kernel:\n%s", ip, kernelSet())
		}
	}
	if n := metric(t, g.Registry(), "tollguard_nftables_skipped_total", map[string]string{"reason": "scope"}); n < 1 {
		t.Errorf("skipped{scope} = %v", n)
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
	for _, ip := range []string{"198.51.100.7", "198.51.100.11"} {
		if inKernel(ip) {
			t.Errorf("%s in the rebuilt set:\n%s", ip, kernelSet())
		}
	}
	if _, ok := g2.Set().Banned(forged, time.Now()); !ok || !inKernel("198.51.100.8") {
		t.Errorf("the unproven ban was not restored (inline %v):\n%s", ok, kernelSet())
	}
}

// TestKernelEligible: which decisions the kernel takes. With an inline
// listener, unproven bans stay inline (the proxy drops them, and a forger
// must not reach the kernel); beside FreeSWITCH they go, as nothing else
// can enforce them.
func TestKernelEligible(t *testing.T) {
	allowed := netip.MustParseAddr("198.51.100.1")
	ip := func(a string, unproven bool) decision.Decision {
		return decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(netip.MustParseAddr(a)), Unproven: unproven}
	}
	acct := ip("198.51.100.3", false)
	acct.Scope, acct.Account = decision.ScopeIPAccount, "1001"
	for _, tc := range []struct {
		name    string
		sidecar bool
		d       decision.Decision
		want    bool
		whyNot  string
	}{
		{"proven, inline", false, ip("198.51.100.2", false), true, ""},
		{"unproven, inline", false, ip("198.51.100.2", true), false, "unproven"},
		{"unproven, sidecar", true, ip("198.51.100.2", true), true, ""},
		{"allowed", true, ip("198.51.100.1", false), false, "allowed"},
		{"ip_account", true, acct, false, "scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &kernel{allowed: func(a netip.Addr) bool { return a == allowed }, unproven: tc.sidecar}
			if ok, why := k.eligible(tc.d); ok != tc.want || why != tc.whyNot {
				t.Errorf("eligible = %v %q, want %v %q", ok, why, tc.want, tc.whyNot)
			}
		})
	}
}
