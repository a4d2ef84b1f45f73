package daemon

import (
	"context"
	"fmt"

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
		Hourly: agg, Audit: g.audit, Logger: g.log, Now: g.now,
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
// the overview's hourly cache in the background (one pass over 30 days of
// events), so the first operator to open the console does not wait for it.
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
