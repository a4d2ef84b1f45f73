package api_test

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/decision"
)

// fakeBans is an in-memory BanService recording its calls.
type fakeBans struct {
	mu       sync.Mutex
	summary  api.BanSummary
	set      *decision.Set
	now      time.Time
	err      error
	banReqs  []api.BanRequest
	unbanArg []string
}

func newFakeBans(now time.Time) *fakeBans {
	return &fakeBans{set: decision.NewSet(), now: now}
}

func (f *fakeBans) Summary(context.Context) (api.BanSummary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.summary
	s.Bans = f.set.List(f.now)
	return s, f.err
}

func (f *fakeBans) Ban(_ context.Context, r api.BanRequest) (decision.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.banReqs = append(f.banReqs, r)
	if f.err != nil {
		return decision.Decision{}, f.err
	}
	d := decision.Decision{
		Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(r.IP),
		Origin: decision.OriginAdmin, Rule: "admin", Reason: r.Reason, At: f.now, Until: f.now.Add(r.For),
	}
	if r.Account != "" {
		d.Scope, d.Account = decision.ScopeIPAccount, r.Account
	}
	f.set.Add(d)
	return d, nil
}

func (f *fakeBans) Unban(_ context.Context, ip netip.Addr, account, actor string) ([]decision.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unbanArg = append(f.unbanArg, ip.String()+"|"+account+"|"+actor)
	if f.err != nil {
		return nil, f.err
	}
	if account != "" {
		return f.set.Remove(decision.Key{Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(ip), Account: account}, false), nil
	}
	return f.set.Remove(decision.Key{Scope: decision.ScopeIP, Prefix: decision.HostPrefix(ip)}, true), nil
}
