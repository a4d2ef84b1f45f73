package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/callpolicy/dest"
	"github.com/tollguard/tollguard/internal/callpolicy/rates"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/users"
	"github.com/tollguard/tollguard/internal/web"
)

// buildConsole creates the web console and, without ui.listen, mounts it
// on the admin listener under /ui/.
func (g *Guard) buildConsole(cfg *config.Config) error {
	var agg store.Aggregator
	if a, ok := g.st.(store.Aggregator); ok {
		agg = store.NewHourlyCache(a, g.now)
	}
	con, err := web.New(web.Options{
		Users: users.Open(cfg.DataDir), UI: cfg.UI, API: g.api.Handler(), Bans: g.set.List,
		Hourly: agg, Events: g.st, Prices: (&consolePricer{g: g}).get, Audit: g.audit, Logger: g.log, Now: g.now,
	})
	if err != nil {
		return fmt.Errorf("building console: %w", err)
	}
	g.console = con
	if cfg.UI.Listen == "" {
		g.api.MountPublic(web.Prefix, con.Handler())
	}
	return nil
}

// runConsole serves the console on ui.listen when set, and ends its live
// streams when ctx is done so the listeners can shut down. It first fills
// the overview's hourly cache in the background (from the store's per-hour
// counts), so the first operator to open the console does not wait for it.
func (g *Guard) runConsole(ctx context.Context) error {
	go g.console.Warm(ctx)
	listen := g.config().UI.Listen
	if listen == "" {
		<-ctx.Done()
		g.console.Close()
		return nil
	}
	return g.console.Run(ctx, listen, nil)
}

// consolePricer prices connected calls for the console's loss page from
// the current call_policy.rates, read again when the file, its size or
// time, or call_policy.default_country change (a reload may change them).
type consolePricer struct {
	g     *Guard
	mu    sync.Mutex
	key   string
	price web.Pricer
}

func (p *consolePricer) get() web.Pricer {
	cp := p.g.config().CallPolicy
	if cp.Rates == "" {
		return nil
	}
	fi, err := os.Stat(cp.Rates)
	if err != nil {
		p.g.log.Warn("console loss page: call_policy.rates", "err", err)
		return nil
	}
	key := cp.Rates + "\x00" + cp.DefaultCountry + "\x00" + fi.ModTime().String() + "\x00" + strconv.FormatInt(fi.Size(), 10)
	p.mu.Lock()
	defer p.mu.Unlock()
	if key == p.key {
		return p.price
	}
	data, err := os.ReadFile(cp.Rates)
	if err != nil {
		p.g.log.Warn("console loss page: call_policy.rates", "err", err)
		return nil
	}
	tab, err := rates.Parse(cp.Rates, data)
	if err != nil {
		p.g.log.Warn("console loss page: call_policy.rates", "err", err)
		return nil
	}
	norm, err := dest.New(dest.Options{DefaultCountry: cp.DefaultCountry})
	if err != nil {
		p.g.log.Warn("console loss page: call_policy.default_country", "err", err)
		return nil
	}
	p.key = key
	p.price = func(destination string, billsec time.Duration) (rates.Amount, string, bool) {
		n := norm.Normalize(destination)
		if n.E164 == "" {
			return 0, "", false
		}
		amt, r, ok := tab.Estimate(n.E164, billsec)
		return amt, r.Currency, ok
	}
	return p.price
}
