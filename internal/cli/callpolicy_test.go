package cli

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/api"
)

// fakePolicy is an in-memory api.PolicyService.
type fakePolicy struct{ on, hangup bool }

func (f *fakePolicy) Lockdown(context.Context) (api.LockdownState, error) {
	return api.LockdownState{On: f.on, AllowAccounts: []string{"2001", "evil\x1b[2J"}}, nil
}

func (f *fakePolicy) SetLockdown(_ context.Context, on, hangup bool, _ string) (api.LockdownState, error) {
	f.on, f.hangup = on, hangup
	st, _ := f.Lockdown(context.Background())
	if hangup {
		st.Hangups = 3
	}
	return st, nil
}

func (f *fakePolicy) CheckCall(context.Context, string, netip.Addr, string) api.CheckReply {
	return api.CheckReply{Result: "allow"}
}

func (f *fakePolicy) NewToken(_ context.Context, account string) (api.TokenReply, error) {
	return api.TokenReply{Account: account, Secret: "JBSWY3DPEHPK3PXP", URI: "otpauth://totp/tollguard:" + account + "?secret=JBSWY3DPEHPK3PXP"}, nil
}

func TestLockdownAndTokenEndToEnd(t *testing.T) {
	f := &fakePolicy{}
	d := startDaemon(t, func(s *api.Server) { s.MountPolicy(f) })

	code, out, errOut := d.cli(t, "lockdown", "on", "--hangup", "-c", d.cfg)
	want := "lockdown ON: only lockdown.allow_accounts may place calls\nallowed accounts: 2001, \"evil\\x1b[2J\"\nrunning calls being ended: 3\n"
	if code != 0 || out != want || !f.on || !f.hangup {
		t.Errorf("lockdown on --hangup: exit %d, stderr %q:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if code, out, _ = d.cli(t, "lockdown", "status", "-c", d.cfg); code != 0 || !strings.HasPrefix(out, "lockdown ON") {
		t.Errorf("lockdown status: exit %d: %s", code, out)
	}
	if code, out, _ = d.cli(t, "lockdown", "off", "-c", d.cfg); code != 0 || !strings.HasPrefix(out, "lockdown off") || f.on {
		t.Errorf("lockdown off: exit %d: %s", code, out)
	}
	for _, args := range [][]string{{"lockdown"}, {"lockdown", "maybe"}, {"lockdown", "off", "--hangup"}, {"token"}, {"token", "old", "1001"}, {"token", "new"}} {
		if code, _, _ := d.cli(t, append(args, "-c", d.cfg)...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
	code, out, _ = d.cli(t, "token", "new", "1001", "-c", d.cfg)
	if code != 0 || !strings.Contains(out, "secret:  JBSWY3DPEHPK3PXP\n") || !strings.Contains(out, "uri:     otpauth://totp/tollguard:1001") ||
		!strings.Contains(out, "not in call_tokens.accounts") {
		t.Errorf("token new: exit %d:\n%s", code, out)
	}
}
