package intel

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision"
)

// BenchmarkParseCIDR parses a 100,000-line list (a large public feed).
func BenchmarkParseCIDR(b *testing.B) {
	var sb strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&sb, "%d.%d.%d.0/24 ; SBL%d\n", 1+i>>16, i>>8&255, i&255, i)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if es, _, err := parseCIDR(body, 200_000); err != nil || len(es) != 100_000 {
			b.Fatalf("%d entries, %v", len(es), err)
		}
	}
}

// BenchmarkStreamDelta serves a bouncer's delta pull with 10,000 bans in
// force and none changed: the steady state of a bouncer polling every 10 s.
func BenchmarkStreamDelta(b *testing.B) {
	set := decision.NewSet()
	now := time.Now()
	for i := range 10_000 {
		a := netip.AddrFrom4([4]byte{192, 0, byte(2 + i>>8), byte(i)})
		set.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP, Prefix: netip.PrefixFrom(a, 32),
			Origin: "engine", Rule: "jail", At: now, Until: now.Add(time.Hour)})
	}
	e, err := NewExport(ExportOptions{Bans: set.List, APIKeys: []string{bouncerKey}, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	h := e.StreamHandler()
	pull := func(q string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", StreamPath+q, nil)
		r.Header.Set("X-Api-Key", bouncerKey)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := pull("?startup=true"); w.Code != 200 || w.Body.Len() < 10_000*100 {
		b.Fatalf("startup: %d, %d bytes", w.Code, w.Body.Len())
	}
	b.ReportAllocs()
	for b.Loop() {
		if w := pull(""); w.Code != 200 || w.Body.String() != "{\"new\":[],\"deleted\":[]}\n" {
			b.Fatalf("delta: %d %s", w.Code, w.Body.String())
		}
	}
}
