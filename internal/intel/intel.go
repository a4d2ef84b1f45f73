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
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strings"
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

// pullSnapshot reads a whole list (cidr, or an APIBAN document from a
// file) and makes the feed's bans equal to it.
func (in *Intel) pullSnapshot(ctx context.Context, f *feed) error {
	var body []byte
	var next fetched
	var nextFile fileState
	if isHTTP(f.cfg.URL) {
		r, err := fetchHTTP(ctx, in.client, f.cfg.URL, nil, f.etag, f.lastMod, f.cfg.Timeout, f.cfg.MaxBytes)
		if err != nil {
			if errors.Is(err, errNotModified) {
				in.extend(f)
			}
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("HTTP status %d", r.status)
		}
		body, next = r.body, r
	} else {
		b, st, err := fetchFile(f.cfg.URL, f.file, f.cfg.MaxBytes)
		if err != nil {
			if errors.Is(err, errNotModified) {
				in.extend(f)
			}
			return err
		}
		body, nextFile = b, st
	}
	var list []netip.Prefix
	var bad int
	var err error
	if f.cfg.Format == FormatAPIBAN {
		list, _, _, bad, err = parseAPIBAN(body, f.cfg.MaxEntries)
	} else {
		list, bad, err = parseCIDR(body, f.cfg.MaxEntries)
	}
	in.m.rejected.WithLabelValues(f.cfg.Name, "malformed").Add(float64(bad))
	if err != nil {
		return err
	}
	until := in.now().Add(f.cfg.BanFor)
	want := make(map[netip.Prefix]time.Time, len(list))
	for _, p := range in.screen(f, list) {
		want[p] = until
	}
	if err := in.replace(f, want, f.cfg.BanFor/2, nil); err != nil {
		return err
	}
	f.etag, f.lastMod, f.file = next.etag, next.lastModified, nextFile
	return nil
}

// pullAPIBAN pages through APIBAN's v1 API: the URL alone returns the
// oldest batch and an ID, URL/ID the next, until ID "none" (HTTP 400 "no
// new bans"). APIBAN only adds; an address it lists again is extended.
func (in *Intel) pullAPIBAN(ctx context.Context, f *feed) error {
	const maxPages = 24
	for range maxPages {
		u := f.cfg.URL
		if f.apibanID != "" {
			u = strings.TrimSuffix(u, "/") + "/" + f.apibanID
		}
		r, err := fetchHTTP(ctx, in.client, u, nil, "", "", f.cfg.Timeout, f.cfg.MaxBytes)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK && r.status != http.StatusBadRequest {
			return fmt.Errorf("HTTP status %d", r.status)
		}
		list, id, done, bad, err := parseAPIBAN(r.body, f.cfg.MaxEntries)
		in.m.rejected.WithLabelValues(f.cfg.Name, "malformed").Add(float64(bad))
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("HTTP status %d", r.status)
		}
		until := in.now().Add(f.cfg.BanFor)
		for _, p := range in.screen(f, list) {
			if len(f.entries) >= f.cfg.MaxEntries {
				return fmt.Errorf("%w (%d)", errTooMany, f.cfg.MaxEntries)
			}
			in.ban(f, p, until, "")
		}
		if id == "" || id == f.apibanID {
			return nil
		}
		f.apibanID = id
	}
	return nil
}

// pullCrowdSec reads the Local API's decision stream: startup=true until
// one pull succeeded (the whole list, replacing ours), then the deltas.
func (in *Intel) pullCrowdSec(ctx context.Context, f *feed) error {
	u := strings.TrimSuffix(f.cfg.URL, "/") + "/v1/decisions/stream?startup=" + fmt.Sprint(!f.started)
	hdr := http.Header{"X-Api-Key": []string{f.cfg.APIKey}}
	r, err := fetchHTTP(ctx, in.client, u, hdr, "", "", f.cfg.Timeout, f.cfg.MaxBytes)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("HTTP status %d", r.status)
	}
	now := in.now()
	added, deleted, skipped, bad, err := parseStream(r.body, now, f.cfg.MaxEntries)
	in.m.rejected.WithLabelValues(f.cfg.Name, "malformed").Add(float64(bad))
	in.m.rejected.WithLabelValues(f.cfg.Name, "unsupported").Add(float64(skipped))
	if err != nil {
		return err
	}
	ok := map[netip.Prefix]bool{}
	for _, p := range in.screen(f, prefixes(added)) {
		ok[p] = true
	}
	if !f.started {
		want := map[netip.Prefix]time.Time{}
		reasons := map[netip.Prefix]string{}
		for _, e := range added {
			if ok[e.prefix] && e.until.After(want[e.prefix]) {
				want[e.prefix], reasons[e.prefix] = e.until, e.scenario
			}
		}
		if err := in.replace(f, want, 0, reasons); err != nil {
			return err
		}
		f.started = true
		return nil
	}
	for _, e := range deleted {
		if _, had := f.entries[e.prefix]; had {
			in.unban(f, e.prefix)
		}
	}
	for _, e := range added {
		if !ok[e.prefix] {
			continue
		}
		if _, had := f.entries[e.prefix]; !had && len(f.entries) >= f.cfg.MaxEntries {
			return fmt.Errorf("%w (%d)", errTooMany, f.cfg.MaxEntries)
		}
		in.ban(f, e.prefix, e.until, e.scenario)
	}
	return nil
}

// replace makes the feed's bans equal to want, unless that looks like a
// poisoned or broken feed (see the package comment). Entries already
// applied are re-applied only when their expiry moved by more than slack.
func (in *Intel) replace(f *feed, want map[netip.Prefix]time.Time, slack time.Duration, reasons map[netip.Prefix]string) error {
	old := len(f.entries)
	if old >= shrinkBase && len(want)*10 <= old {
		sum := digest(want)
		if sum == f.suspect {
			f.suspectN++
		} else {
			f.suspect, f.suspectN = sum, 1
		}
		if f.suspectN < f.cfg.ShrinkConfirmations {
			in.m.suspicious.WithLabelValues(f.cfg.Name).Inc()
			in.log.Warn("feed shrank suspiciously; keeping the previous list", "feed", f.cfg.Name,
				"before", old, "now", len(want), "seen", f.suspectN, "believed_after", f.cfg.ShrinkConfirmations)
			return errSuspicious
		}
		in.log.Warn("feed shrank and stayed shrunk; accepting it", "feed", f.cfg.Name, "before", old, "now", len(want))
	}
	f.suspect, f.suspectN = 0, 0
	for p := range f.entries {
		if _, keep := want[p]; !keep {
			in.unban(f, p)
		}
	}
	for p, until := range want {
		if had, ok := f.entries[p]; ok && until.Sub(had) <= slack && until.Sub(had) >= -slack {
			continue
		}
		in.ban(f, p, until, reasons[p])
	}
	return nil
}

// extend re-applies the bans of an unchanged feed that are past half
// their life, so a feed that keeps listing an address keeps it banned.
func (in *Intel) extend(f *feed) {
	if f.cfg.Format == FormatCrowdSec {
		return
	}
	until := in.now().Add(f.cfg.BanFor)
	for p, had := range f.entries {
		if until.Sub(had) > f.cfg.BanFor/2 {
			in.ban(f, p, until, f.reasons[p])
		}
	}
}

// screen returns the entries the policy accepts, counting and logging (one
// line per pull) the refused ones.
func (in *Intel) screen(f *feed, list []netip.Prefix) []netip.Prefix {
	out := list[:0:0]
	var first error
	refused := 0
	for _, p := range list {
		if err := in.policy.CheckPrefix(p); err != nil {
			refused++
			if first == nil {
				first = err
			}
			continue
		}
		out = append(out, p)
	}
	if refused > 0 {
		in.m.rejected.WithLabelValues(f.cfg.Name, "refused").Add(float64(refused))
		in.log.Warn("feed entries refused", "feed", f.cfg.Name, "count", refused, "first", first)
	}
	return out
}

func (in *Intel) ban(f *feed, p netip.Prefix, until time.Time, reason string) {
	f.entries[p] = until
	if reason != "" {
		f.reasons[p] = reason
	}
	d := in.decision(f, p, decision.TypeBan)
	d.Until = until
	if reason = f.reasons[p]; reason != "" {
		d.Reason = clean(reason)
	}
	in.apply.Apply(d)
}

func (in *Intel) unban(f *feed, p netip.Prefix) {
	delete(f.entries, p)
	delete(f.reasons, p)
	in.apply.Apply(in.decision(f, p, decision.TypeUnban))
}

func (in *Intel) decision(f *feed, p netip.Prefix, t decision.Type) decision.Decision {
	scope := decision.ScopePrefix
	if p.Bits() == p.Addr().BitLen() {
		scope = decision.ScopeIP
	}
	return decision.Decision{Type: t, Scope: scope, Prefix: p, Origin: OriginPrefix + f.cfg.Name,
		Rule: "intel", Reason: "listed by " + f.cfg.Name, At: in.now()}
}

// clean makes feed-supplied text safe to store and show: printable, at
// most 128 bytes.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 128 {
		s = strings.ToValidUTF8(s[:128], "")
	}
	return s
}

func prefixes(es []csEntry) []netip.Prefix {
	out := make([]netip.Prefix, len(es))
	for i, e := range es {
		out[i] = e.prefix
	}
	return out
}

// digest identifies a list independently of its order.
func digest(m map[netip.Prefix]time.Time) uint64 {
	ps := make([]string, 0, len(m))
	for p := range m {
		ps = append(ps, p.String())
	}
	slices.Sort(ps)
	h := fnv.New64a()
	for _, p := range ps {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64() | 1
}
