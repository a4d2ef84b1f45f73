// Package intel turns threat-intelligence feeds into bans.
//
// A feed is a plain CIDR list, APIBAN JSON or a CrowdSec Local API decision
// stream, read from a file or over HTTP(S) on a schedule, with ETag /
// If-Modified-Since, a size cap, an entry cap and a timeout. Its entries
// become decision.Decision bans with the origin "intel:<name>" and a
// bounded life (ban_for, or the duration CrowdSec sends), re-applied while
// the feed keeps listing them and lifted when it drops them.
//
// A feed is outside data and may be poisoned. Every entry passes a
// screen.Policy: nothing in the allow list, nothing broader than
// min_prefix_v4 / min_prefix_v6, nothing reserved or private. A snapshot
// that lost 90 % or more of a list of at least 20 entries at once (an
// empty 200, a truncated file, a hijacked URL) is suspicious: the old list
// stays, nothing is lifted, the event is counted and logged, and the
// validators are not kept so the next pull fetches the whole body again.
// Only when the same shrunk list arrives shrink_confirmations times in a
// row is it believed. The trade-off: a feed that really shrank that much
// takes (shrink_confirmations × refresh) to lift its bans; the old bans do
// not grow older meanwhile (they are not extended) and expire on their own
// after ban_for if the feed never recovers.
package intel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/decision/screen"
)

// OriginPrefix starts the Origin of every ban a feed makes.
const OriginPrefix = "intel:"

// shrinkBase is the smallest list whose collapse is suspicious.
const shrinkBase = 20

// errSuspicious reports a snapshot that shrank too much at once.
var errSuspicious = errors.New("feed shrank by 90% or more at once; keeping the previous list")

// Options configures an Intel.
type Options struct {
	Config Config
	// Apply receives the feeds' bans and unbans; it must not block. Wrap a
	// decision.Set in OnlyOwn so a feed's unban cannot lift another
	// origin's ban of the same address.
	Apply decision.Applier
	// Allow and Allowed describe the operator's allow list: a feed entry
	// touching it is refused.
	Allow   []netip.Prefix
	Allowed func(netip.Addr) bool
	// Client is the HTTP client. Default NewHTTPClient().
	Client   *http.Client
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
}

// FeedStatus is what a feed's last pulls did.
type FeedStatus struct {
	Name        string    `json:"name"`
	Format      string    `json:"format"`
	Entries     int       `json:"entries"`
	LastSuccess time.Time `json:"last_success"`
	LastError   string    `json:"last_error,omitempty"`
	Suspicious  bool      `json:"suspicious"`
}

// Intel runs the configured feeds.
type Intel struct {
	feeds  []*feed
	apply  decision.Applier
	policy *screen.Policy
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	m      metrics
}

type feed struct {
	cfg FeedConfig

	mu       sync.Mutex
	entries  map[netip.Prefix]time.Time
	reasons  map[netip.Prefix]string
	etag     string
	lastMod  string
	file     fileState
	apibanID string
	started  bool // crowdsec: a startup pull succeeded
	suspect  uint64
	suspectN int
	status   FeedStatus
}

// New validates the configuration and returns an Intel; Run pulls.
func New(o Options) (*Intel, error) {
	cfg := o.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("intel: %w", err)
	}
	if o.Apply == nil {
		return nil, errors.New("intel: no applier")
	}
	in := &Intel{apply: o.Apply, client: o.Client, log: o.Logger, now: o.Now,
		policy: &screen.Policy{Allow: o.Allow, Allowed: o.Allowed, MinBits4: cfg.MinPrefixV4,
			MinBits6: cfg.MinPrefixV6, RefuseInternal: true}}
	if in.client == nil {
		in.client = NewHTTPClient()
	}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.log = in.log.With("component", "intel")
	if in.now == nil {
		in.now = time.Now
	}
	for _, fc := range cfg.Feeds {
		in.feeds = append(in.feeds, &feed{cfg: fc, entries: map[netip.Prefix]time.Time{},
			reasons: map[netip.Prefix]string{}, status: FeedStatus{Name: fc.Name, Format: fc.Format}})
	}
	if err := in.m.register(o.Registry); err != nil {
		return nil, err
	}
	return in, nil
}

// Run pulls every feed at once and then on its schedule (±10 % jitter)
// until ctx ends. A failed pull is logged and counted; the feed's bans
// stay until they expire.
func (in *Intel) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range in.feeds {
		wg.Go(func() {
			for {
				if err := in.refresh(ctx, f); err != nil && ctx.Err() == nil {
					in.log.Warn("feed pull failed", "feed", f.cfg.Name, "err", err)
				}
				jitter := time.Duration(rand.Int64N(int64(f.cfg.Refresh)/5+1)) - f.cfg.Refresh/10
				select {
				case <-ctx.Done():
					return
				case <-time.After(f.cfg.Refresh + jitter):
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Refresh pulls the named feed now.
func (in *Intel) Refresh(ctx context.Context, name string) error {
	for _, f := range in.feeds {
		if f.cfg.Name == name {
			return in.refresh(ctx, f)
		}
	}
	return fmt.Errorf("intel: no feed %q", name)
}

// Status reports every feed.
func (in *Intel) Status() []FeedStatus {
	out := make([]FeedStatus, 0, len(in.feeds))
	for _, f := range in.feeds {
		f.mu.Lock()
		s := f.status
		s.Entries = len(f.entries)
		f.mu.Unlock()
		out = append(out, s)
	}
	return out
}

func (in *Intel) refresh(ctx context.Context, f *feed) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := in.now()
	for p, until := range f.entries {
		if !now.Before(until) { // expired in the ban set by itself
			delete(f.entries, p)
			delete(f.reasons, p)
		}
	}
	var err error
	switch f.cfg.Format {
	case FormatCIDR:
		err = in.pullSnapshot(ctx, f)
	case FormatAPIBAN:
		if isHTTP(f.cfg.URL) {
			err = in.pullAPIBAN(ctx, f)
		} else {
			err = in.pullSnapshot(ctx, f)
		}
	case FormatCrowdSec:
		err = in.pullCrowdSec(ctx, f)
	}
	result := "ok"
	switch {
	case errors.Is(err, errNotModified):
		result, err = "not_modified", nil
	case errors.Is(err, errSuspicious):
		result = "suspicious"
	case errors.Is(err, errTooLarge), errors.Is(err, errTooMany):
		result = "oversize"
	case err != nil:
		result = "error"
	}
	in.m.fetches.WithLabelValues(f.cfg.Name, result).Inc()
	in.m.entries.WithLabelValues(f.cfg.Name).Set(float64(len(f.entries)))
	f.status.Suspicious = result == "suspicious"
	if err != nil {
		f.status.LastError = err.Error()
		return fmt.Errorf("feed %s: %w", f.cfg.Name, err)
	}
	f.status.LastSuccess, f.status.LastError = in.now(), ""
	return nil
}
