package event

import (
	"net/netip"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	meta := Meta{
		Time:      time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC),
		Source:    netip.MustParseAddrPort("203.0.113.7:5060"),
		Transport: "udp",
	}
	resp := func(method string, code int, creds bool, mod func(*Response)) *Response {
		r := &Response{Meta: meta, Code: code, SIP: SIP{
			Method: method, FromUser: "1001", ToUser: "1001", RURIUser: "0044123",
			HasCredentials: creds,
		}}
		if creds {
			r.AuthUser = "1001"
		}
		if mod != nil {
			mod(r)
		}
		return r
	}
	tests := []struct {
		name string
		in   *Response
		want Kind // 0 = nil
		// check inspects the derived event further.
		check func(t *testing.T, ev Event)
	}{
		{"challenge without credentials is not a failure", resp("REGISTER", 401, false, nil), 0, nil},
		{"proxy challenge without credentials is not a failure", resp("INVITE", 407, false, nil), 0, nil},
		{"401 with credentials is a failure", resp("REGISTER", 401, true, nil), KindAuthFailure, func(t *testing.T, ev Event) {
			af := ev.(*AuthFailure)
			if af.Account != "1001" || af.Code != 401 || af.Source != meta.Source {
				t.Errorf("got %+v", af)
			}
		}},
		{"407 with credentials is a failure", resp("INVITE", 407, true, nil), KindAuthFailure, nil},
		{"stale nonce is not a failure", resp("REGISTER", 401, true, func(r *Response) { r.Stale = true }), 0, nil},
		{"stale proxy nonce is not a failure", resp("INVITE", 407, true, func(r *Response) { r.Stale = true }), 0, nil},
		{"403 with credentials is a failure", resp("INVITE", 403, true, nil), KindAuthFailure, nil},
		{"REGISTER 403 without credentials is unknown account", resp("REGISTER", 403, false, nil), KindAuthFailure, func(t *testing.T, ev Event) {
			if a := ev.(*AuthFailure).Account; a != "1001" {
				t.Errorf("account = %q", a)
			}
		}},
		{"REGISTER 404 is unknown account", resp("REGISTER", 404, false, nil), KindAuthFailure, nil},
		{"INVITE 404 is a failed call, not an auth failure", resp("INVITE", 404, false, nil), KindCallEnded, func(t *testing.T, ev Event) {
			ce := ev.(*CallEnded)
			if ce.Cause != "failed" || ce.Code != 404 || ce.Destination != "0044123" {
				t.Errorf("got %+v", ce)
			}
		}},
		{"INVITE 403 without credentials is a failed call", resp("INVITE", 403, false, nil), KindCallEnded, nil},
		{"INVITE 487 is a cancel", resp("INVITE", 487, false, nil), KindCallEnded, func(t *testing.T, ev Event) {
			if c := ev.(*CallEnded).Cause; c != "cancel" {
				t.Errorf("cause = %q", c)
			}
		}},
		{"REGISTER 200 is a registration", resp("REGISTER", 200, true, func(r *Response) { r.Expires = 600 }), KindRegister, func(t *testing.T, ev Event) {
			if e := ev.(*Register).Expires; e != 600 {
				t.Errorf("expires = %d", e)
			}
		}},
		{"REGISTER 200 with expires 0 is an unregistration", resp("REGISTER", 200, true, nil), 0, nil},
		{"INVITE 200 is answered", resp("INVITE", 200, true, nil), KindCallAnswered, func(t *testing.T, ev Event) {
			if d := ev.(*CallAnswered).Destination; d != "0044123" {
				t.Errorf("destination = %q", d)
			}
		}},
		{"provisional gives nothing", resp("INVITE", 180, false, nil), 0, nil},
		{"OPTIONS 200 gives nothing", resp("OPTIONS", 200, false, nil), 0, nil},
		{"BYE 481 gives nothing", resp("BYE", 481, false, nil), 0, nil},
		{"nil gives nothing", nil, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := Classify(tc.in)
			if tc.want == 0 {
				if ev != nil {
					t.Fatalf("Classify = %s, want nil", ev.Kind())
				}
				return
			}
			if ev == nil {
				t.Fatalf("Classify = nil, want %s", tc.want)
			}
			if ev.Kind() != tc.want {
				t.Fatalf("Classify = %s, want %s", ev.Kind(), tc.want)
			}
			if ev.Base().Time != meta.Time {
				t.Errorf("meta not copied: %+v", ev.Base())
			}
			if tc.check != nil {
				tc.check(t, ev)
			}
		})
	}
}
