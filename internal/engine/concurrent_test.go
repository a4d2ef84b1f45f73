package engine

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
)

// TestConcurrentUse runs Check, Admit, Reload, Forget and Failures at once;
// run with -race. Every address fails 3 times on its own account, so each
// must end with exactly one ip_account ban.
func TestConcurrentUse(t *testing.T) {
	e, set, _ := newEngine(t, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64, byte(g), byte(i)}), 5060)
				for n := range 3 {
					e.Check(ctx, authFail(src.String(), "1001", t0.Add(time.Duration(n)*time.Second)))
				}
				e.Admit(src.Addr(), t0)
				e.Check(ctx, &event.Request{Meta: event.Meta{Time: t0, Source: src}, SIP: event.SIP{Method: "REGISTER", ToUser: "1002"}})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := e.Reload(config.Default()); err != nil {
				t.Error(err)
			}
			e.Failures(t0)
			e.Forget(netip.MustParseAddr("192.0.2.1"), "")
		}
	})
	wg.Wait()
	if n := len(set.List(t0.Add(10 * time.Second))); n == 0 {
		t.Fatal("no bans after 1600 addresses failed 3 times each")
	}
}
