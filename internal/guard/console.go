package guard

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
	agg, _ := g.st.(store.Aggregator)
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
// streams when ctx is done so the listeners can shut down.
func (g *Guard) runConsole(ctx context.Context) error {
	listen := g.config().UI.Listen
	if listen == "" {
		<-ctx.Done()
		g.console.Close()
		return nil
	}
	return g.console.Run(ctx, listen, nil)
}
