package intel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/decision/screen"
)

// errTooMany reports a feed with more entries than max_entries.
var errTooMany = errors.New("more entries than max_entries")

// parsePrefix reads "192.0.2.1", "192.0.2.0/24", "2001:db8::/48" or their
// IPv4-mapped forms.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return screen.Norm(p), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("zoned address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseCIDR reads a plain list: one address or network per line, the
// first field only ("192.0.2.0/24 ; SBL123" as in Spamhaus DROP), '#' and
// ';' start comments, blank lines are skipped. A body with lines but not
// one valid entry (an HTML error page, binary junk) is an error, so it
// cannot be taken for an empty list.
func parseCIDR(body []byte, maxEntries int) (entries []netip.Prefix, bad int, err error) {
	if !utf8.Valid(body) {
		return nil, 0, errors.New("not UTF-8 text")
	}
	seen := map[netip.Prefix]bool{}
	lines := 0
	for line := range bytes.Lines(body) {
		s := string(bytes.TrimSpace(line))
		if i := strings.IndexAny(s, "#;"); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		lines++
		if i := strings.IndexAny(s, " \t,"); i >= 0 {
			s = s[:i]
		}
		p, perr := parsePrefix(s)
		if perr != nil {
			bad++
			continue
		}
		if !seen[p] {
			if len(entries) >= maxEntries {
				return nil, bad, fmt.Errorf("%w (%d)", errTooMany, maxEntries)
			}
			seen[p] = true
			entries = append(entries, p)
		}
	}
	if lines > 0 && len(entries) == 0 {
		return nil, bad, fmt.Errorf("no valid entry in %d lines", lines)
	}
	return entries, bad, nil
}

// apibanDoc is APIBAN's response: {"ipaddress":[…],"ID":"…"}. On errors
// ipaddress may be a string ("rate limit exceeded"), hence RawMessage.
type apibanDoc struct {
	IPAddress json.RawMessage `json:"ipaddress"`
	ID        string          `json:"ID"`
}

// parseAPIBAN reads one APIBAN document. done reports the end of the list
// (ID "none", or the "no new bans" marker).
func parseAPIBAN(body []byte, maxEntries int) (entries []netip.Prefix, id string, done bool, bad int, err error) {
	var doc apibanDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, "", false, 0, fmt.Errorf("apiban json: %w", err)
	}
	var ips []string
	if err := json.Unmarshal(doc.IPAddress, &ips); err != nil {
		var msg string
		if json.Unmarshal(doc.IPAddress, &msg) == nil {
			return nil, "", false, 0, fmt.Errorf("apiban says %.60q", msg)
		}
		return nil, "", false, 0, errors.New("apiban json: ipaddress is not a list")
	}
	if len(doc.ID) > 64 {
		return nil, "", false, 0, errors.New("apiban json: ID longer than 64 bytes")
	}
	if doc.ID == "none" || (len(ips) == 1 && ips[0] == "no new bans") {
		return nil, doc.ID, true, 0, nil
	}
	if len(ips) > maxEntries {
		return nil, "", false, 0, fmt.Errorf("%w (%d)", errTooMany, maxEntries)
	}
	for _, s := range ips {
		p, perr := parsePrefix(strings.TrimSpace(s))
		if perr != nil {
			bad++
			continue
		}
		entries = append(entries, p)
	}
	return entries, doc.ID, false, bad, nil
}

// csDecision is one decision as the CrowdSec Local API serves it
// (pkg/models.Decision).
type csDecision struct {
	ID       int64  `json:"id,omitempty"`
	Origin   string `json:"origin"`
	Type     string `json:"type"`
	Scope    string `json:"scope"`
	Value    string `json:"value"`
	Duration string `json:"duration"`
	Scenario string `json:"scenario"`
	UUID     string `json:"uuid,omitempty"`
}

// csStream is GET /v1/decisions/stream's body.
type csStream struct {
	New     []csDecision `json:"new"`
	Deleted []csDecision `json:"deleted"`
}

// csEntry is a CrowdSec decision reduced to what a ban needs.
type csEntry struct {
	prefix   netip.Prefix
	until    time.Time
	scenario string
}

// parseStream reads a decision stream. Decisions that are not bans on an
// Ip or Range scope are skipped (counted in skipped); ones that cannot be
// read are counted in bad.
func parseStream(body []byte, now time.Time, maxEntries int) (added, deleted []csEntry, skipped, bad int, err error) {
	var s csStream
	if err := json.Unmarshal(body, &s); err != nil {
		return nil, nil, 0, 0, fmt.Errorf("crowdsec json: %w", err)
	}
	if len(s.New)+len(s.Deleted) > maxEntries {
		return nil, nil, 0, 0, fmt.Errorf("%w (%d)", errTooMany, maxEntries)
	}
	conv := func(d csDecision, isNew bool) (csEntry, int) {
		if !strings.EqualFold(d.Type, "ban") {
			return csEntry{}, 1
		}
		scope := strings.ToLower(d.Scope)
		if scope != "ip" && scope != "range" {
			return csEntry{}, 1
		}
		p, err := parsePrefix(strings.TrimSpace(d.Value))
		if err != nil || (scope == "ip" && p.Bits() != p.Addr().BitLen()) {
			return csEntry{}, 2
		}
		e := csEntry{prefix: p, scenario: d.Scenario}
		if isNew {
			dur, err := time.ParseDuration(d.Duration)
			if err != nil {
				return csEntry{}, 2
			}
			if dur <= 0 {
				return csEntry{}, 1
			}
			e.until = now.Add(dur)
		}
		return e, 0
	}
	for _, d := range s.New {
		switch e, r := conv(d, true); r {
		case 0:
			added = append(added, e)
		case 1:
			skipped++
		default:
			bad++
		}
	}
	for _, d := range s.Deleted {
		switch e, r := conv(d, false); r {
		case 0:
			deleted = append(deleted, e)
		case 1:
			skipped++
		default:
			bad++
		}
	}
	return added, deleted, skipped, bad, nil
}
