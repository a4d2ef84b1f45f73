package api_test

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthenticatedGet measures one authenticated GET /api/v1/bans
// through the whole handler (auth, metrics, route, JSON) on an empty set.
func BenchmarkAuthenticatedGet(b *testing.B) {
	h := newHarness(b)
	r := httptest.NewRequest("GET", "/api/v1/bans", nil)
	r.RemoteAddr = "127.0.0.5:40000"
	r.Header.Set("Authorization", h.bearer())
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.srv.Handler().ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
