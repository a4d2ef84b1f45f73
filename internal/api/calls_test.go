package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/teardown"
)

// fakeCalls is an in-memory CallService.
type fakeCalls struct {
	mu        sync.Mutex
	calls     []teardown.Call
	hangupErr error
	hung      []string
	deadlines map[string]time.Time
}

func (f *fakeCalls) Calls() []teardown.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]teardown.Call(nil), f.calls...)
}

func (f *fakeCalls) find(id string) int {
	for i, c := range f.calls {
		if c.ID == id {
			return i
		}
	}
	return -1
}

func (f *fakeCalls) HangupCall(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(id)
	if i < 0 {
		return fmt.Errorf("fake: %w", teardown.ErrNoCall)
	}
	f.hung = append(f.hung, id)
	f.calls = append(f.calls[:i], f.calls[i+1:]...)
	return f.hangupErr
}

func (f *fakeCalls) SetDeadline(id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.find(id) < 0 {
		return fmt.Errorf("fake: %w", teardown.ErrNoCall)
	}
	f.deadlines[id] = at
	return nil
}

func callsHarness(t *testing.T) (*harness, *fakeCalls) {
	h := newHarness(t)
	f := &fakeCalls{deadlines: map[string]time.Time{}, calls: []teardown.Call{{
		ID: "a84b4c76e66710@pc33", Account: "13812345678", From: "13812345678", To: "0044201234567",
		Source: netip.MustParseAddrPort("198.51.100.7:5060"), Direction: "outbound",
		Start: t0.Add(-90 * time.Second), Answer: t0.Add(-80 * time.Second),
	}}}
	h.srv.MountCalls(f)
	return h, f
}

func TestGetCalls(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		to          string
		masked      bool
		audits      int
	}{
		{"masked by default", "", "004******4567", true, 0},
		{"unmasked and audited", "?unmask=true", "0044201234567", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := callsHarness(t)
			w := h.do("GET", "/api/v1/calls"+tc.query, h.bearer(), "")
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var rep api.CallsReply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Calls) != 1 || rep.Masked != tc.masked {
				t.Fatalf("reply = %+v", rep)
			}
			c := rep.Calls[0]
			if c.To != tc.to || c.Duration != 80 || c.ID != "a84b4c76e66710@pc33" || c.Source.String() != "198.51.100.7:5060" {
				t.Errorf("call = %+v", c)
			}
			if tc.masked && (strings.Contains(w.Body.String(), "13812345678") || c.Account != "138****5678") {
				t.Errorf("numbers not masked: %s", w.Body)
			}
			if len(h.audit) != tc.audits {
				t.Errorf("%d audit records, want %d", len(h.audit), tc.audits)
			}
		})
	}
	h := newHarness(t)
	h.srv.MountCalls(&fakeCalls{})
	if w := h.do("GET", "/api/v1/calls", h.bearer(), ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"calls": []`) {
		t.Errorf("empty list: %d %s", w.Code, w.Body)
	}
	if w := h.do("GET", "/api/v1/calls", "", ""); w.Code != 401 {
		t.Errorf("without a token: %d", w.Code)
	}
}

func TestHangupRoute(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		err        error
		code       int
		want       string
		hung       int
	}{
		{"hung up", "/api/v1/calls/a84b4c76e66710@pc33/hangup", nil, 200, `"result": "ok"`, 1},
		{"escaped id", "/api/v1/calls/a84b4c76e66710%40pc33/hangup", nil, 200, `"result": "ok"`, 1},
		{"unknown call", "/api/v1/calls/nope/hangup", nil, 404, `no running call \"nope\"`, 0},
		{"a side did not answer", "/api/v1/calls/a84b4c76e66710@pc33/hangup", errors.New("caller did not answer BYE"), 502, "caller did not answer BYE", 1},
		{"control character", "/api/v1/calls/a%1bb/hangup", nil, 400, "control character", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, f := callsHarness(t)
			f.hangupErr = tc.err
			w := h.do("POST", tc.path, h.bearer(), "")
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("status %d body %s, want %d with %q", w.Code, w.Body, tc.code, tc.want)
			}
			if len(f.hung) != tc.hung {
				t.Errorf("%d hangups, want %d", len(f.hung), tc.hung)
			}
			if len(h.audit) != 1 {
				t.Fatalf("%d audit records, want 1", len(h.audit))
			}
			if a := h.audit[0]; tc.code != 400 && (a.Action != "hangup" || !strings.HasPrefix(a.Actor, "token@")) {
				t.Errorf("audit = %+v", a)
			}
		})
	}
}

func TestDeadlineRoute(t *testing.T) {
	h, f := callsHarness(t)
	w := h.do("POST", "/api/v1/calls/a84b4c76e66710@pc33/deadline", h.bearer(), `{"after":"90s"}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := f.deadlines["a84b4c76e66710@pc33"]; !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("deadline = %v", got)
	}
	for _, bad := range []string{`{"after":"soon"}`, `{"after":"-1s"}`, `{"after":"30d"}`, `{"until":"1s"}`} {
		if w := h.do("POST", "/api/v1/calls/a84b4c76e66710@pc33/deadline", h.bearer(), bad); w.Code != 400 {
			t.Errorf("%s: status %d", bad, w.Code)
		}
	}
	if w := h.do("POST", "/api/v1/calls/other/deadline", h.bearer(), `{"after":"1s"}`); w.Code != 404 {
		t.Errorf("unknown call: %d", w.Code)
	}
}
