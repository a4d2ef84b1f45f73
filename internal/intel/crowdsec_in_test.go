package intel

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeLAPI answers the decision stream like CrowdSec's Local API: the
// startup body first, then the queued deltas, checking the bouncer key.
type fakeLAPI struct {
	mu       sync.Mutex
	key      string
	startup  string
	deltas   []string
	requests []string
}

func (l *fakeLAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests = append(l.requests, r.Method+" "+r.URL.RequestURI())
	if r.Header.Get("X-Api-Key") != l.key {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"access forbidden"}`)
		return
	}
	if r.URL.Path != "/v1/decisions/stream" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("startup") == "true" {
		fmt.Fprint(w, l.startup)
		return
	}
	if len(l.deltas) == 0 {
		fmt.Fprint(w, `{"new":[],"deleted":[]}`)
		return
	}
	fmt.Fprint(w, l.deltas[0])
	l.deltas = l.deltas[1:]
}

func TestCrowdSecStreamIn(t *testing.T) {
	lapi := &fakeLAPI{key: "bouncer-key",
		startup: `{"new":[
 {"duration":"3h59m58s","id":1,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"192.0.2.10"},
 {"duration":"23h0m0s","id":2,"origin":"lists","scenario":"firehol","scope":"Range","type":"ban","value":"203.0.113.0/24"},
 {"duration":"1h","id":3,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"captcha","value":"192.0.2.11"},
 {"duration":"1h","id":4,"origin":"crowdsec","scenario":"x","scope":"Username","type":"ban","value":"root"},
 {"duration":"1h","id":5,"origin":"cscli","scenario":"manual","scope":"Ip","type":"ban","value":"198.51.100.7"},
 {"duration":"forever","id":6,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"ban","value":"192.0.2.12"},
 {"duration":"1h","id":7,"origin":"crowdsec","scenario":"x","scope":"Ip","type":"ban","value":"192.0.2.0/24"}
],"deleted":null}`,
		deltas: []string{`{"new":[{"duration":"4h","id":8,"origin":"crowdsec","scenario":"sip-bf","scope":"ip","type":"ban","value":"2001:db8::99"}],
"deleted":[{"duration":"-1s","id":1,"origin":"crowdsec","scenario":"crowdsecurity/ssh-bf","scope":"Ip","type":"ban","value":"192.0.2.10"}]}`}}
	ts := httptest.NewServer(lapi)
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "lapi", URL: ts.URL + "/", Format: FormatCrowdSec, APIKey: "bouncer-key"})
	ctx := context.Background()
	if err := r.in.Refresh(ctx, "lapi"); err != nil {
		t.Fatal(err)
	}
	d, ok := r.set.Banned(netip.MustParseAddr("192.0.2.10"), r.now)
	if !ok || !d.Until.Equal(r.now.Add(3*time.Hour+59*time.Minute+58*time.Second)) || d.Reason != "crowdsecurity/ssh-bf" || d.Origin != "intel:lapi" {
		t.Fatalf("startup ban = %+v", d)
	}
	if !r.banned("203.0.113.9") {
		t.Fatal("range ban not applied")
	}
	for _, a := range []string{"192.0.2.11", "198.51.100.7", "192.0.2.12", "192.0.2.13"} {
		if r.banned(a) {
			t.Errorf("%s banned (captcha, allowed carrier, bad duration, ip scope on a range)", a)
		}
	}
	if v := r.count(t, r.in.m.rejected, "lapi", "unsupported"); v != 2 {
		t.Errorf("unsupported = %v, want 2 (captcha, username)", v)
	}
	if v := r.count(t, r.in.m.rejected, "lapi", "malformed"); v != 2 {
		t.Errorf("malformed = %v, want 2", v)
	}
	if v := r.count(t, r.in.m.rejected, "lapi", "refused"); v != 1 {
		t.Errorf("refused = %v, want 1 (the carrier)", v)
	}

	// The delta: one added, one deleted.
	if err := r.in.Refresh(ctx, "lapi"); err != nil {
		t.Fatal(err)
	}
	if r.banned("192.0.2.10") || !r.banned("2001:db8::99") || !r.banned("203.0.113.9") {
		t.Fatal("delta not applied")
	}
	want := []string{"GET /v1/decisions/stream?startup=true", "GET /v1/decisions/stream?startup=false"}
	if fmt.Sprint(lapi.requests) != fmt.Sprint(want) {
		t.Fatalf("requests %v, want %v", lapi.requests, want)
	}
}

func TestCrowdSecWrongKey(t *testing.T) {
	lapi := &fakeLAPI{key: "right", startup: `{"new":[],"deleted":[]}`}
	ts := httptest.NewServer(lapi)
	defer ts.Close()
	r := newRig(t, FeedConfig{Name: "lapi", URL: ts.URL, Format: FormatCrowdSec, APIKey: "wrong"})
	if err := r.in.Refresh(context.Background(), "lapi"); err == nil {
		t.Fatal("a 403 was accepted")
	}
	// Still startup next time: nothing was loaded.
	lapi.key = "wrong"
	if err := r.in.Refresh(context.Background(), "lapi"); err != nil {
		t.Fatal(err)
	}
	if lapi.requests[1] != "GET /v1/decisions/stream?startup=true" {
		t.Fatalf("after a failed startup pull: %s", lapi.requests[1])
	}
}
