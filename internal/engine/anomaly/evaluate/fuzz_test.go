package evaluate

import (
	"bytes"
	"testing"
)

// FuzzReadEvents feeds hostile event files to the reader: it returns
// events in time order or an error, never panics.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte(`{"kind":"call_attempt","time":"2026-01-05T10:00:00Z","source":"100.64.0.1:5060","account":"1001","destination":"+442079460001","label":"fraud","pattern":"hijack"}`))
	f.Add([]byte(`{"masked":false,"records":[{"seq":1,"kind":"call_ended","event":{"time":"2026-01-05T10:00:00Z","account":"1","billsec":5000000000}}]}`))
	f.Add([]byte("# comment\n\n{\"kind\":\"register\",\"time\":\"2026-01-05T10:00:00Z\",\"account\":\"1\"}\n{\"kind\":"))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ReadEvents(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Event.Base().Time.Before(evs[i-1].Event.Base().Time) {
				t.Fatal("events out of time order")
			}
		}
	})
}
