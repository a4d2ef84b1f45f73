package evaluate

import (
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

func TestReadEvents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		kinds  []string // in time order
		fraud  []bool
		errHas string
	}{
		{name: "replay lines, sorted by time", in: `{"kind":"call_ended","time":"2026-01-05T10:02:00Z","account":"1001","destination":"+44","duration":120000000000,"billsec":110000000000}
{"kind":"call_attempt","time":"2026-01-05T10:00:00Z","source":"100.64.0.1:5060","account":"1001","destination":"+442079460001","label":"fraud","pattern":"hijack"}
  # a comment line
`, kinds: []string{"call_attempt", "call_ended"}, fraud: []bool{true, false}},
		{name: "replay lines", in: `{"kind":"call_ended","time":"2026-01-05T10:02:00Z","account":"1001","destination":"+44","duration":120000000000,"billsec":110000000000}
{"kind":"call_attempt","time":"2026-01-05T10:00:00Z","source":"100.64.0.1:5060","account":"1001","destination":"+442079460001","label":"fraud","pattern":"hijack"}

{"kind":"register","time":"2026-01-05T09:00:00Z","account":"1001","user_agent":"Yealink"}
{"kind":"auth_failure","time":"2026-01-05T09:00:00Z","account":"1001","code":403}
{"kind":"datagram","time":"2026-01-05T09:00:00Z","source":"1.2.3.4:5060"}`,
			kinds: []string{"register", "call_attempt", "call_ended"}, fraud: []bool{false, true, false}},
		{name: "stored records, one per line", in: `{"seq":2,"time":"2026-01-05T10:00:01Z","kind":"call_answered","hash":"ab","event":{"time":"2026-01-05T10:00:01Z","account":"1001","destination":"+442079460001"}}
{"seq":1,"time":"2026-01-05T10:00:00Z","kind":"call_attempt","hash":"aa","event":{"time":"2026-01-05T10:00:00Z","account":"1001","destination":"+442079460001"},"label":"fraud"}`,
			kinds: []string{"call_attempt", "call_answered"}, fraud: []bool{true, false}},
		{name: "events --json document, newest first", in: `{
  "masked": false,
  "records": [
    {"seq": 2, "time": "2026-01-05T10:05:00Z", "kind": "call_attempt", "event": {"time": "2026-01-05T10:05:00Z", "account": "1001", "destination": "+33142685300"}},
    {"seq": 1, "time": "2026-01-05T10:00:00Z", "kind": "call_attempt", "event": {"time": "2026-01-05T10:00:00Z", "account": "1001", "destination": "+442079460001"}}
  ]
}`, kinds: []string{"call_attempt", "call_attempt"}, fraud: []bool{false, false}},
		{name: "nested documents", in: `{"masked":false,"records":[{"masked":false,"records":[]}]}`, errHas: "inside a record"},
		{name: "masked", in: `{"masked":true,"records":[]}`, errHas: "masked"},
		{name: "unknown kind", in: `{"kind":"teleport","time":"2026-01-05T10:00:00Z"}`, errHas: `unknown kind "teleport"`},
		{name: "no kind", in: `{"time":"2026-01-05T10:00:00Z"}`, errHas: `no "kind"`},
		{name: "no time", in: `{"kind":"call_attempt","account":"1"}`, errHas: "without a time"},
		{name: "bad label", in: `{"kind":"call_attempt","time":"2026-01-05T10:00:00Z","label":"evil"}`, errHas: "label"},
		{name: "not an object", in: `[1,2]`, errHas: "not a JSON object"},
		{name: "bad field", in: `{"kind":"call_attempt","time":"yesterday"}`, errHas: "call_attempt"},
		{name: "second value bad", in: "{\"kind\":\"register\",\"time\":\"2026-01-05T10:00:00Z\"}\n{\"kind\":", errHas: "value 2"},
		{name: "empty", in: "", kinds: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadEvents(strings.NewReader(tc.in))
			if tc.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.kinds) {
				t.Fatalf("%d events, want %d", len(got), len(tc.kinds))
			}
			var last time.Time
			for i, l := range got {
				if k := l.Event.Kind().String(); k != tc.kinds[i] {
					t.Errorf("event %d is %s, want %s", i, k, tc.kinds[i])
				}
				if l.Fraud != tc.fraud[i] {
					t.Errorf("event %d fraud %v", i, l.Fraud)
				}
				if l.Event.Base().Time.Before(last) {
					t.Errorf("event %d out of time order", i)
				}
				last = l.Event.Base().Time
			}
		})
	}
}

func TestReadEventsFields(t *testing.T) {
	got, err := ReadEvents(strings.NewReader(`{"kind":"call_ended","time":"2026-01-05T10:02:00Z","source":"100.64.0.1:5060","account":"1001","destination":"+442079460001","duration":120000000000,"billsec":110000000000,"label":"fraud","pattern":"premium_drip"}`))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := got[0].Event.(*event.CallEnded)
	if !ok || e.Account != "1001" || e.Billsec != 110*time.Second || e.Source.Port() != 5060 || got[0].Pattern != "premium_drip" {
		t.Errorf("read %#v %+v", got[0].Event, got[0])
	}
}
