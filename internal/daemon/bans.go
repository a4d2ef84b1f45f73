package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/enforce/fail2ban"
	"github.com/tollguard/tollguard/internal/store"
)

// persister writes the engine's decisions to the store in order, off the
// packet path: Apply queues, one goroutine commits each ban before the next
// (write-through). A full queue — thousands of bans pending — is logged and
// counted; the ban is still in force in memory.
type persister struct {
	st      store.Store
	log     *slog.Logger
	q       chan decision.Decision
	dropped atomic.Int64
}

func newPersister(st store.Store, log *slog.Logger) *persister {
	return &persister{st: st, log: log, q: make(chan decision.Decision, 4096)}
}

// Apply implements decision.Applier.
func (p *persister) Apply(d decision.Decision) {
	select {
	case p.q <- d:
	default:
		p.dropped.Add(1)
		p.log.Error("ban queue full: decision kept in memory only", "decision", d.String())
	}
}

// run commits queued decisions until ctx is done, then drains the queue.
func (p *persister) run(ctx context.Context) error {
	for {
		select {
		case d := <-p.q:
			p.save(d)
		case <-ctx.Done():
			for {
				select {
				case d := <-p.q:
					p.save(d)
				default:
					return nil
				}
			}
		}
	}
}

func (p *persister) save(d decision.Decision) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if d.Type == decision.TypeUnban {
		err = p.st.DeleteBan(ctx, d)
	} else {
		err = p.st.SaveBan(ctx, d)
	}
	if err != nil {
		p.log.Error("persisting decision", "decision", d.String(), "err", err)
	}
}

// banService implements api.BanService over the engine, the ban set and
// the store.
type banService struct {
	g *Guard
}

var _ api.BanService = banService{}

// Summary implements api.BanService.
func (b banService) Summary(ctx context.Context) (api.BanSummary, error) {
	g := b.g
	now := g.now()
	cfg := g.config()
	s := api.BanSummary{Now: now}
	for i, r := range cfg.Jail.RegisterFailure {
		s.Jail = append(s.Jail, api.JailRule{
			Name: fmt.Sprintf("register_failure[%d]", i), FindTime: api.Duration(r.FindTime.D()),
			MaxRetry: r.MaxRetry, BanMode: r.BanMode, BanTime: api.Duration(r.BanTime.D()),
		})
	}
	fs := g.eng.Failures(now.Add(-maxFindTime(cfg)))
	for i := len(fs) - 1; i >= 0 && len(s.Failures) < 200; i-- {
		f := fs[i]
		s.Failures = append(s.Failures, api.Failure{Time: f.Time, Address: f.Addr, Account: f.Account, Code: f.Code})
	}
	s.Bans = g.set.List(now)
	s.Cluster = g.clusterNote()
	return s, nil
}

// maxFindTime is how far back the failure history reaches: the longest
// findtime of any rule, at least an hour.
func maxFindTime(cfg *config.Config) time.Duration {
	d := time.Hour
	for _, r := range cfg.Jail.RegisterFailure {
		d = max(d, r.FindTime.D())
	}
	return d
}

// Ban implements api.BanService: the ban is in force and committed to the
// store before it returns.
func (b banService) Ban(ctx context.Context, req api.BanRequest) (decision.Decision, error) {
	g := b.g
	if g.lists.Load().Allowed(req.IP) {
		return decision.Decision{}, fmt.Errorf("%w: %s is in the allow list (or is the upstream) and is never banned", api.ErrInvalid, req.IP)
	}
	now := g.now()
	d := decision.Decision{
		Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: decision.HostPrefix(req.IP),
		Origin: decision.OriginAdmin, Rule: "admin", Reason: req.Reason, At: now, Until: now.Add(req.For), Count: 1,
	}
	if req.Account != "" {
		d.Scope, d.Account = decision.ScopeIPAccount, req.Account
	}
	if d.Reason == "" {
		d.Reason = "banned by operator"
	}
	if err := g.st.SaveBan(ctx, d); err != nil {
		return decision.Decision{}, fmt.Errorf("saving ban: %w", err)
	}
	g.set.Apply(d)
	g.notify(d)
	return d, nil
}

// Unban implements api.BanService: the ban is lifted at once, the engine's
// counters for it are cleared (the next failure does not re-ban), and the
// store records who lifted it.
func (b banService) Unban(ctx context.Context, ip netip.Addr, account string, actor string) ([]decision.Decision, error) {
	g := b.g
	k := decision.Key{Scope: decision.ScopeIP, Prefix: decision.HostPrefix(ip)}
	if account != "" {
		k = decision.Key{Scope: decision.ScopeIPAccount, Prefix: decision.HostPrefix(ip), Account: account}
	}
	lifted := g.set.Remove(k, account == "")
	g.eng.Forget(ip, account)
	f2bErr := g.unbanFail2ban(ctx, ip, account)
	if len(lifted) == 0 {
		return nil, f2bErr
	}
	d := decision.Decision{Type: decision.TypeUnban, Scope: k.Scope, Prefix: k.Prefix, Account: k.Account,
		Origin: actor, Rule: "admin", Reason: "lifted by operator", At: g.now()}
	if err := g.st.DeleteBan(ctx, d); err != nil {
		return lifted, fmt.Errorf("recording unban: %w", err)
	}
	g.notify(d)
	return lifted, f2bErr
}

// unbanFail2ban lifts ip in the fail2ban jail that reads the daemon's log
// (log.fail2ban_jail), which keeps its own, often longer, ban time: so the
// operator's unban reaches the firewall even when tollguard's own ban has
// already expired. fail2ban bans addresses only: an unban of one account
// leaves it alone.
func (g *Guard) unbanFail2ban(ctx context.Context, ip netip.Addr, account string) error {
	jail := g.config().Log.Fail2banJail
	if jail == "" || account != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	n, err := fail2ban.Client{Jail: jail, Command: g.f2bCmd}.Unban(ctx, ip)
	if err != nil {
		return fmt.Errorf("lifted in tollguard but not in fail2ban: %w", err)
	}
	g.log.Info("unban sent to fail2ban", "component", "fail2ban", "jail", jail, "target", ip.String(), "lifted", n)
	return nil
}
