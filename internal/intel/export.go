package intel

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
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

// StreamPath is where CrowdSec bouncers expect the decision stream, under
// their configured api_url.
const StreamPath = "/v1/decisions/stream"

// LivePath is where bouncers in live mode ask about one address.
const LivePath = "/v1/decisions"

// maxForever is the duration a ban without expiry is shared with: CrowdSec
// decisions always carry one.
const maxForever = 365 * 24 * time.Hour

// ExportOptions configures an Export.
type ExportOptions struct {
	// Bans returns the bans in force, e.g. (*decision.Set).List. Required.
	Bans func(now time.Time) []decision.Decision
	// APIKeys are the bouncer keys accepted on the CrowdSec stream (sent
	// as X-Api-Key). With none, the stream refuses every request.
	APIKeys []string
	// IncludeInternal shares bans of private, shared, loopback and
	// link-local addresses too; by default they stay home.
	IncludeInternal bool
	// IncludeFeeds re-shares bans that came from threat-intelligence feeds
	// (origin intel:…); by default only tollguard's own decisions are
	// shared (feeds have their own terms and their own distribution).
	IncludeFeeds bool
	// Proven, when set, limits sharing to the decisions it accepts, e.g.
	// bans of sources whose address a completed handshake proved (DESIGN
	// key decision 9: a forged datagram must not get an address banned on
	// other organisations' firewalls).
	Proven func(decision.Decision) bool
	// Now is the clock. Default time.Now.
	Now      func() time.Time
	Logger   *slog.Logger
	Registry prometheus.Registerer
}

// Export serves tollguard's bans to other systems: a plain list, JSON, and
// the CrowdSec Local API decision stream so existing CrowdSec bouncers
// (crowdsec-firewall-bouncer and others) enforce them. Only ip and prefix
// bans are shared; account bans mean nothing to a firewall.
type Export struct {
	o    ExportOptions
	keys [][32]byte
	log  *slog.Logger

	mu   sync.Mutex
	sent map[[32]byte]map[decision.Key]decision.Decision // what each bouncer was last told

	requests *prometheus.CounterVec
}

// NewExport returns an Export.
func NewExport(o ExportOptions) (*Export, error) {
	if o.Bans == nil {
		return nil, fmt.Errorf("intel: export needs a source of bans")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Export{o: o, sent: map[[32]byte]map[decision.Key]decision.Decision{}, log: o.Logger}
	for _, k := range o.APIKeys {
		if len(k) < 16 {
			return nil, fmt.Errorf("intel: a bouncer key must be at least 16 characters")
		}
		e.keys = append(e.keys, sha256.Sum256([]byte(k)))
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.log = e.log.With("component", "intel")
	e.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_intel_export_requests_total",
		Help: "Requests to the ban feeds, by format (plain, json, crowdsec) and result (ok, forbidden, bad_request)."},
		[]string{"format", "result"})
	if o.Registry != nil {
		if err := o.Registry.Register(e.requests); err != nil {
			return nil, fmt.Errorf("intel: registering metrics: %w", err)
		}
	}
	return e, nil
}

// Handler serves the feeds: GET /v1/decisions/stream and GET /v1/decisions
// (CrowdSec stream and live modes), GET /bans.txt and GET /bans.json. Mount it under a prefix with
// http.StripPrefix; bouncers take that prefix as their api_url.
func (e *Export) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+StreamPath, e.StreamHandler())
	mux.Handle("GET "+LivePath, e.LiveHandler())
	mux.Handle("GET /bans.txt", e.PlainHandler())
	mux.Handle("GET /bans.json", e.JSONHandler())
	return mux
}

// shared returns the bans to share, in a stable order.
func (e *Export) shared(now time.Time) []decision.Decision {
	var out []decision.Decision
	for _, d := range e.o.Bans(now) {
		if d.Type != decision.TypeBan || (d.Scope != decision.ScopeIP && d.Scope != decision.ScopePrefix) ||
			!d.Prefix.IsValid() || d.Expired(now) {
			continue
		}
		if !e.o.IncludeFeeds && strings.HasPrefix(d.Origin, OriginPrefix) {
			continue
		}
		p := screen.Norm(d.Prefix)
		if !e.o.IncludeInternal && (screen.Internal(p.Addr()) || (d.Scope == decision.ScopePrefix && screen.Internal(last(p)))) {
			continue
		}
		if e.o.Proven != nil && !e.o.Proven(d) {
			continue
		}
		d.Prefix = p
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b decision.Decision) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return out
}

// value is the address ("192.0.2.1") or network ("192.0.2.0/24").
func value(d decision.Decision) string {
	if d.Scope == decision.ScopeIP {
		return d.Prefix.Addr().String()
	}
	return d.Prefix.String()
}

// PlainHandler serves one address or network per line.
func (e *Export) PlainHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		for _, d := range e.shared(e.o.Now()) {
			b.WriteString(value(d))
			b.WriteByte('\n')
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		e.requests.WithLabelValues("plain", "ok").Inc()
		_, _ = w.Write([]byte(b.String()))
	})
}

// jsonBan is one entry of the JSON feed.
type jsonBan struct {
	Value string    `json:"value"`
	Scope string    `json:"scope"`
	Rule  string    `json:"rule"`
	At    time.Time `json:"at"`
	Until time.Time `json:"until,omitzero"`
}

// JSONHandler serves {"generated": …, "bans": [{value, scope, rule, at,
// until}]}. Reasons and accounts are not shared.
func (e *Export) JSONHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := e.o.Now()
		out := struct {
			Generated time.Time `json:"generated"`
			Bans      []jsonBan `json:"bans"`
		}{Generated: now, Bans: []jsonBan{}}
		for _, d := range e.shared(now) {
			out.Bans = append(out.Bans, jsonBan{Value: value(d), Scope: string(d.Scope), Rule: d.Rule, At: d.At, Until: d.Until})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		e.requests.WithLabelValues("json", "ok").Inc()
		_ = json.NewEncoder(w).Encode(out)
	})
}

// StreamHandler serves GET /v1/decisions/stream as CrowdSec's Local API
// does: the bouncer key in X-Api-Key (403 {"message":"access forbidden"}
// otherwise); startup=true returns every ban in force under "new";
// otherwise "new" holds what this bouncer has not been told yet (or whose
// expiry moved) and "deleted" what it was told and is no longer in force.
// The filters scopes, origins, scenarios_containing and
// scenarios_not_containing are honoured as the Local API does.
func (e *Export) StreamHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, ok := e.auth(r.Header.Get("X-Api-Key"))
		if !ok {
			e.forbid(w, r)
			return
		}
		if r.Method == http.MethodHead {
			// A bouncer's connectivity check: no body, and the delta it
			// will ask for next must not be consumed.
			e.requests.WithLabelValues("crowdsec", "ok").Inc()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			return
		}
		q := r.URL.Query()
		startup := q.Get("startup")
		if startup != "" && startup != "true" && startup != "false" {
			e.badRequest(w, "startup: want true or false")
			return
		}
		keep := filters(q.Get("scopes"), q.Get("origins"), q.Get("scenarios_containing"), q.Get("scenarios_not_containing"))
		now := e.o.Now()
		resp := csStream{New: []csDecision{}, Deleted: []csDecision{}}
		current := map[decision.Key]decision.Decision{}
		for _, d := range e.shared(now) {
			if keep(d) {
				current[d.Key()] = d
			}
		}
		e.mu.Lock()
		prev := e.sent[key]
		if startup == "true" || prev == nil {
			prev = map[decision.Key]decision.Decision{}
		}
		for k, cur := range current {
			if old, ok := prev[k]; !ok || !old.Until.Equal(cur.Until) || !old.At.Equal(cur.At) {
				resp.New = append(resp.New, toCrowdSec(cur, now))
			}
		}
		for k, old := range prev {
			if _, ok := current[k]; !ok {
				gone := toCrowdSec(old, now)
				gone.Duration = "0s" // lifted early, or a ban without expiry
				if !old.Until.IsZero() && old.Until.Before(now) {
					gone.Duration = old.Until.Sub(now).Round(time.Second).String()
				}
				resp.Deleted = append(resp.Deleted, gone)
			}
		}
		e.sent[key] = current
		e.mu.Unlock()
		slices.SortFunc(resp.New, func(a, b csDecision) int { return strings.Compare(a.Value, b.Value) })
		slices.SortFunc(resp.Deleted, func(a, b csDecision) int { return strings.Compare(a.Value, b.Value) })
		w.Header().Set("Content-Type", "application/json")
		e.requests.WithLabelValues("crowdsec", "ok").Inc()
		_ = json.NewEncoder(w).Encode(resp)
	})
}

// forbid answers a request without a valid bouncer key as the Local API
// does; the key presented is not logged.
func (e *Export) forbid(w http.ResponseWriter, r *http.Request) {
	e.requests.WithLabelValues("crowdsec", "forbidden").Inc()
	e.log.Info("decisions: bad or missing bouncer key", "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`{"message":"access forbidden"}`))
}

// LiveHandler serves GET /v1/decisions for bouncers in live mode, as the
// Local API does: ip=ADDR returns the bans covering that address (its own
// and any range containing it), range=CIDR those equal to or, with
// contains=false, inside it; scope=, value= and type= narrow further. The
// answer is a JSON array of decisions, or null when there is none.
func (e *Export) LiveHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := e.auth(r.Header.Get("X-Api-Key")); !ok {
			e.forbid(w, r)
			return
		}
		q := r.URL.Query()
		var addr netip.Addr
		var rng netip.Prefix
		var err error
		if v := q.Get("ip"); v != "" {
			if addr, err = netip.ParseAddr(v); err != nil {
				e.badRequest(w, "ip: not an address")
				return
			}
			addr = addr.Unmap()
		}
		if v := q.Get("range"); v != "" {
			if rng, err = netip.ParsePrefix(v); err != nil {
				e.badRequest(w, "range: not a CIDR")
				return
			}
			rng = screen.Norm(rng)
		}
		contains := q.Get("contains") != "false"
		now := e.o.Now()
		var out []csDecision
		for _, d := range e.shared(now) {
			c := toCrowdSec(d, now)
			switch {
			case addr.IsValid() && !(d.Prefix.Contains(addr) && (contains || d.Scope == decision.ScopeIP)):
				continue
			case rng.IsValid() && contains && !(d.Prefix.Bits() <= rng.Bits() && d.Prefix.Contains(rng.Addr())):
				continue
			case rng.IsValid() && !contains && !(d.Prefix.Bits() >= rng.Bits() && rng.Contains(d.Prefix.Addr())):
				continue
			case q.Get("scope") != "" && !strings.EqualFold(q.Get("scope"), c.Scope):
				continue
			case q.Get("value") != "" && q.Get("value") != c.Value:
				continue
			case q.Get("type") != "" && !strings.EqualFold(q.Get("type"), c.Type):
				continue
			}
			out = append(out, c)
		}
		e.requests.WithLabelValues("crowdsec", "ok").Inc()
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodHead {
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

func (e *Export) badRequest(w http.ResponseWriter, msg string) {
	e.requests.WithLabelValues("crowdsec", "bad_request").Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// auth returns the hash of the presented key when it is one of ours. The
// comparison is constant-time; the key itself is never stored or logged.
func (e *Export) auth(k string) ([32]byte, bool) {
	if k == "" {
		return [32]byte{}, false
	}
	h := sha256.Sum256([]byte(k))
	found := 0
	for _, want := range e.keys {
		found |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	return h, found == 1
}

// toCrowdSec renders a ban as the Local API's decision JSON.
func toCrowdSec(d decision.Decision, now time.Time) csDecision {
	scope := "Ip"
	if d.Scope == decision.ScopePrefix {
		scope = "Range"
	}
	left := maxForever
	if !d.Until.IsZero() {
		left = min(d.Until.Sub(now), maxForever)
	}
	return csDecision{ID: decisionID(d), Origin: csOrigin, Type: "ban", Scope: scope, Value: value(d),
		Duration: left.Round(time.Second).String(), Scenario: scenario(d)}
}

// csOrigin is the origin of every decision tollguard serves.
const csOrigin = "tollguard"

// csScope is the lower-cased Local API scope of d, as filters compare it.
func csScope(d decision.Decision) string {
	if d.Scope == decision.ScopePrefix {
		return "range"
	}
	return "ip"
}

// scenario names the rule that banned, as "tollguard/<rule>".
func scenario(d decision.Decision) string {
	if d.Rule == "" {
		return "tollguard/ban"
	}
	return "tollguard/" + d.Rule
}

// decisionID is a stable positive id for one ban (target and time made),
// within JSON's exact integer range.
func decisionID(d decision.Decision) int64 {
	h := fnv.New64a()
	h.Write([]byte(d.Scope))
	b, _ := d.Prefix.MarshalBinary()
	h.Write(b)
	h.Write([]byte(d.Account))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(d.At.UnixNano())))
	return int64(h.Sum64()&(1<<53-1)) | 1
}

// filters builds the Local API's stream filters.
func filters(scopes, origins, containing, notContaining string) func(decision.Decision) bool {
	split := func(s string) []string {
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(strings.ToLower(f)); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	sc, or, in, out := split(scopes), split(origins), split(containing), split(notContaining)
	return func(d decision.Decision) bool {
		if len(sc) > 0 && !slices.Contains(sc, csScope(d)) {
			return false
		}
		if len(or) > 0 && !slices.Contains(or, csOrigin) {
			return false
		}
		if len(in) == 0 && len(out) == 0 {
			return true
		}
		s := strings.ToLower(scenario(d))
		if len(in) > 0 && !slices.ContainsFunc(in, func(x string) bool { return strings.Contains(s, x) }) {
			return false
		}
		return !slices.ContainsFunc(out, func(x string) bool { return strings.Contains(s, x) })
	}
}

// last returns the last address in p.
func last(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
