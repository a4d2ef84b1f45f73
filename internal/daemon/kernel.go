package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/enforce/nftables"
)

// openKernel opens the nftables table (nftables.enabled) and fills its sets
// from the bans the store holds, so the kernel drops what the daemon
// dropped before its restart.
func (g *Guard) openKernel(cfg *config.Config, stored []decision.Decision) error {
	nft, err := nftables.Open(nftables.Config{Table: cfg.NFTables.Table, Now: g.now, Registry: g.reg})
	if err != nil {
		return fmt.Errorf("nftables.enabled: %w (the daemon needs CAP_NET_ADMIN)", err)
	}
	k, err := newKernel(nft, func(a netip.Addr) bool { return g.lists.Load().Allowed(a) }, g.log, g.reg)
	if err != nil {
		nft.Close()
		return err
	}
	// Beside FreeSWITCH (no inline listener) the kernel is the only place a
	// ban can drop traffic, so it takes unproven bans too; the engine caps
	// them at unproven.maxtime, and one datagram never makes one.
	k.unproven = !sipEnabled(cfg)
	g.kern = k
	n, err := k.sync(stored)
	if err != nil {
		return fmt.Errorf("nftables: loading the stored bans: %w", err)
	}
	g.log.Info("kernel sets rebuilt from the store", "component", "nftables", "table", cfg.NFTables.Table, "bans", n)
	return nil
}

// kernelQueue bounds the decisions waiting for the kernel.
const kernelQueue = 4096

// kernel hands the daemon's decisions to nftables (nftables.enabled). Only
// what the kernel can enforce without harm goes there: bans of one proven
// address (scope ip; an ip_account ban would cut off every phone behind
// that address, an unproven one lets a forger aim the ban), never an
// address the allow list or the PBX covers. In sidecar mode (no inline
// listener) unproven bans go too, as the kernel is the only enforcer
// there: the engine caps them at unproven.maxtime and never makes one from
// a single datagram. Apply queues and never blocks;
// run hands the queue to the kernel in batches, one netlink transaction per
// run of bans or unbans.
type kernel struct {
	nft     *nftables.Enforcer
	allowed func(netip.Addr) bool
	log     *slog.Logger
	q       chan decision.Decision
	skipped *prometheus.CounterVec
	// unproven lets bans of unproven sources through: set in sidecar
	// mode, where nothing else can enforce them.
	unproven bool
}

func newKernel(nft *nftables.Enforcer, allowed func(netip.Addr) bool, log *slog.Logger, reg prometheus.Registerer) (*kernel, error) {
	k := &kernel{nft: nft, allowed: allowed, log: log.With("component", "nftables"), q: make(chan decision.Decision, kernelQueue),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_nftables_skipped_total",
			Help: "Decisions not handed to the kernel, by reason (unproven, scope, allowed, queue_full)."}, []string{"reason"})}
	if err := reg.Register(k.skipped); err != nil {
		return nil, err
	}
	return k, nil
}

// eligible says whether d may reach the kernel, and if not, why.
func (k *kernel) eligible(d decision.Decision) (bool, string) {
	if d.Unproven && !k.unproven {
		return false, "unproven"
	}
	if d.Scope != decision.ScopeIP || !d.Prefix.IsSingleIP() {
		return false, "scope"
	}
	if d.Type == decision.TypeBan && k.allowed(d.Prefix.Addr()) {
		return false, "allowed"
	}
	return true, ""
}

// Apply implements decision.Applier: it queues d when the kernel may
// enforce it.
func (k *kernel) Apply(d decision.Decision) {
	if ok, why := k.eligible(d); !ok {
		k.skipped.WithLabelValues(why).Inc()
		return
	}
	select {
	case k.q <- d:
	default:
		k.skipped.WithLabelValues("queue_full").Inc()
		k.log.Error("kernel queue full: decision enforced inline only", "decision", d.String())
	}
}

// sync replaces the kernel sets' content with the eligible bans among
// stored (the store's active bans at start).
func (k *kernel) sync(stored []decision.Decision) (int, error) {
	var bans []nftables.Ban
	for _, d := range stored {
		if ok, _ := k.eligible(d); ok && d.Type == decision.TypeBan {
			bans = append(bans, nftables.Ban{Addr: d.Prefix.Addr(), Until: d.Until})
		}
	}
	return k.nft.Sync(bans)
}

// run hands queued decisions to the kernel until ctx ends, then the rest of
// the queue, and closes the netlink connection. The table stays: bans
// outlive the daemon and expire in the kernel.
func (k *kernel) run(ctx context.Context) error {
	defer k.nft.Close()
	batch := make([]decision.Decision, 0, 256)
	for {
		select {
		case d := <-k.q:
			batch = append(batch[:0], d)
		case <-ctx.Done():
			batch = batch[:0]
			for len(k.q) > 0 {
				batch = append(batch, <-k.q)
			}
			k.apply(batch)
			return nil
		}
		for len(batch) < cap(batch) && len(k.q) > 0 {
			batch = append(batch, <-k.q)
		}
		k.apply(batch)
	}
}

// apply sends ds in order, one transaction per run of the same type.
func (k *kernel) apply(ds []decision.Decision) {
	for i := 0; i < len(ds); {
		j := i
		for j < len(ds) && ds[j].Type == ds[i].Type {
			j++
		}
		var err error
		if ds[i].Type == decision.TypeUnban {
			addrs := make([]netip.Addr, 0, j-i)
			for _, d := range ds[i:j] {
				addrs = append(addrs, d.Prefix.Addr())
			}
			err = k.nft.Unban(addrs...)
		} else {
			bans := make([]nftables.Ban, 0, j-i)
			for _, d := range ds[i:j] {
				bans = append(bans, nftables.Ban{Addr: d.Prefix.Addr(), Until: d.Until})
			}
			_, err = k.nft.Ban(bans...)
		}
		if err != nil {
			k.log.Error("kernel sets not updated: decisions enforced inline only", "count", j-i, "err", err)
		}
		i = j
	}
}
