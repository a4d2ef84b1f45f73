package intel

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

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
