package freeswitch

import (
	"context"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// TestHangupAccount: the teardown.Teardown methods send the hupall that
// matches the account, and refuse a name that would widen or split it.
func TestHangupAccount(t *testing.T) {
	ctx := testCtx(t)
	srv := esltest.New(t, "ClueCon")
	s := newTestSource(t, srv, nil)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Stream(sctx, make(chan event.Event, 1))
	<-srv.Subscribed
	for s.current() == nil {
		time.Sleep(time.Millisecond)
	}
	if _, err := s.HangupAccount(ctx, "1001"); err != nil {
		t.Errorf("HangupAccount = %v", err)
	}
	for _, bad := range []string{"", "1001 1002", "a\nb", strings.Repeat("9", 129)} {
		if _, err := s.HangupAccount(ctx, bad); err == nil {
			t.Errorf("HangupAccount(%q) accepted", bad)
		}
	}
	cmds := srv.Commands()
	if got := cmds[len(cmds)-1]; got != "api hupall NORMAL_CLEARING sip_auth_username 1001" {
		t.Errorf("last command = %q", got)
	}
}
