package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"github.com/tollguard/tollguard/internal/testkit"
)

// The fail2ban hand-off end to end, with a real fail2ban-server reading the
// daemon's log through the shipped filter: a proven ban (an operator's)
// reaches fail2ban, and `tollguard unban` lifts it there too
// (fail2ban-client set tollguard unbanip ADDR). Failures FreeSWITCH reports
// over the Event Socket name no transport, so their ban is unproven and
// never handed to fail2ban, whose bantime tollguard cannot cap.
func TestFail2banHandOff(t *testing.T) {
	filter, err := filepath.Abs("../../examples/fail2ban/filter.d/tollguard.conf")
	if err != nil {
		t.Fatal(err)
	}
	f2b := testkit.StartFail2ban(t, filter)
	srv := esltest.New(t, "ClueCon")
	cfg := sidecarConfig(t, srv)
	cfg.Log.Fail2banFile = f2b.Log
	cfg.Log.Fail2banJail = "tollguard"
	cfg.Jail.RegisterFailure[0].BanMode = "ip"

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	g, err := New(ctx, cfg, Options{Logger: slog.New(slog.DiscardHandler), SourceBackoff: 20 * time.Millisecond, Fail2banClient: f2b.Client})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-g.Ready()
	sc := <-srv.Subscribed
	for range 3 {
		sc.Write(esltest.FrameEvent(esltest.At(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "x", "REGISTER"), time.Now())))
	}
	waitFor(t, "the sidecar's ban", func() bool {
		_, ok := g.Set().Banned(netip.MustParseAddr("198.51.100.7"), time.Now())
		return ok
	})

	client := func(args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		args = append(args, "--admin", g.AdminAddr().String(), "--token-file", filepath.Join(cfg.DataDir, api.TokenFile))
		if code := cli.Main(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("tollguard %v: exit %d %s %s", args, code, out.String(), errb.String())
		}
	}
	client("ban", "198.51.100.9", "--for", "1h", "--reason", "seen in the CDRs")
	waitFor(t, "fail2ban's ban", func() bool { return slices.Contains(f2b.Actions(), "ban 198.51.100.9") })
	if slices.Contains(f2b.Actions(), "ban 198.51.100.7") {
		t.Errorf("an unproven ban reached fail2ban: %v", f2b.Actions())
	}
	client("unban", "198.51.100.9")
	waitFor(t, "fail2ban's unban", func() bool { return slices.Contains(f2b.Actions(), "unban 198.51.100.9") })
}
