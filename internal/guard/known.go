package guard

import (
	"context"
	"fmt"
	"os"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

// maxKnownReload bounds the registrations read at start (the newest ones).
const maxKnownReload = 100000

// reloadKnown tells the engine where each account registered from, from
// the store's register events of the last distributed.remember, so that a
// distributed lock after a restart does not refuse the phones' usual
// addresses. The store already keeps every registration in its chain, so
// no separate table is needed; the newest maxKnownReload are read, oldest
// fed first so the most recent address of each account ends up first.
func (g *Guard) reloadKnown(ctx context.Context, cfg *config.Config) error {
	if cfg.Distributed.Remember <= 0 {
		return nil
	}
	now := g.now()
	recs, err := g.st.Query(ctx, store.Filter{Kinds: []event.Kind{event.KindRegister}, Since: now.Add(-cfg.Distributed.Remember.D()), Limit: maxKnownReload})
	if err != nil {
		return fmt.Errorf("reloading registrations: %w", err)
	}
	n := 0
	for i := len(recs) - 1; i >= 0; i-- {
		r, ok := recs[i].Event.(*event.Register)
		if !ok {
			continue
		}
		src := r.Source.Addr()
		for _, a := range [...]string{r.Account, r.AuthUser, r.ToUser} {
			if a != "" {
				g.eng.Known(src, a)
			}
		}
		n++
	}
	g.log.Info("registrations reloaded from store", "count", n)
	return nil
}

// readFingerprints reads fingerprints.file (nil when unset: the engine
// uses its embedded list). The engine does no I/O.
func readFingerprints(cfg *config.Config) ([]byte, error) {
	if cfg.Fingerprints.File == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.Fingerprints.File)
	if err != nil {
		return nil, fmt.Errorf("reading fingerprints.file: %w", err)
	}
	return b, nil
}

// provenOnly passes decisions on except unproven ones (decision.Unproven):
// enforcers outside the process must not act on a source that may be
// forged.
type provenOnly struct{ next decision.Applier }

// Apply implements decision.Applier.
func (p provenOnly) Apply(d decision.Decision) {
	if !d.Unproven {
		p.next.Apply(d)
	}
}
