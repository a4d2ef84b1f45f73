package guard

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
)

// maxKnownReload bounds the registrations read at start (the newest ones);
// knownPage is how many are read per query, so only compact tuples are
// held, not whole events.
const maxKnownReload = 100000

var knownPage = 5000 // a variable for the paging test

// reloadKnown tells the engine where each account registered from, from
// the store's register events of the last distributed.remember, so that a
// distributed lock after a restart does not refuse the phones' usual
// addresses. The store already keeps every registration in its chain, so
// no separate table is needed. The newest maxKnownReload are read, a page
// at a time, and fed oldest first so the most recent address of each
// account ends up first.
func (g *Guard) reloadKnown(ctx context.Context, cfg *config.Config) error {
	if cfg.Distributed.Remember <= 0 {
		return nil
	}
	type reg struct {
		src   netip.Addr
		names [3]string
	}
	var regs []reg
	since := g.now().Add(-cfg.Distributed.Remember.D())
	var until time.Time // zero: no upper bound
	for len(regs) < maxKnownReload {
		recs, err := g.st.Query(ctx, store.Filter{Kinds: []event.Kind{event.KindRegister}, Since: since, Until: until, Limit: knownPage})
		if err != nil {
			return fmt.Errorf("reloading registrations: %w", err)
		}
		for _, rec := range recs {
			if r, ok := rec.Event.(*event.Register); ok {
				regs = append(regs, reg{r.Source.Addr(), [3]string{r.Account, r.AuthUser, r.ToUser}})
			}
		}
		if len(recs) < knownPage {
			break
		}
		until = recs[len(recs)-1].Time // newest first: the next page is older
	}
	for i := len(regs) - 1; i >= 0; i-- {
		for _, a := range regs[i].names {
			if a != "" {
				g.eng.Known(regs[i].src, a)
			}
		}
	}
	g.log.Info("registrations reloaded from store", "count", len(regs))
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
