package intel

import (
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

// OnlyOwn wraps a decision.Set for feed decisions. The set holds one
// decision per target, so without it a feed could shorten an engine or
// operator ban of the same address (by overwriting it with its own
// shorter one) or lift it (by dropping the address from the list). With
// it a feed ban replaces only nothing, another feed's ban or an earlier
// expiry, and a feed unban lifts only a ban of the same origin.
func OnlyOwn(set *decision.Set, now func() time.Time) decision.Applier {
	if now == nil {
		now = time.Now
	}
	return decision.ApplierFunc(func(d decision.Decision) {
		cur, ok := current(set, d, now())
		switch {
		case d.Type == decision.TypeUnban:
			if ok && cur.Origin == d.Origin {
				set.Apply(d)
			}
		case !ok || strings.HasPrefix(cur.Origin, OriginPrefix) || (!cur.Until.IsZero() && cur.Until.Before(d.Until)):
			set.Apply(d)
		}
	})
}

// current returns the ban in force for exactly d's target.
func current(set *decision.Set, d decision.Decision, now time.Time) (decision.Decision, bool) {
	cur, ok := set.Banned(d.Prefix.Addr(), now)
	if !ok || cur.Scope != d.Scope || cur.Prefix != d.Prefix {
		return decision.Decision{}, false
	}
	return cur, true
}
