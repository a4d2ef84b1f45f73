package freeswitch

import (
	"bytes"
	"errors"
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes to the frame reader, then parses and
// maps any event frame. Nothing may panic, and a frame's body must be
// exactly its Content-Length.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("Content-Type: auth/request\n\n"))
	f.Add([]byte("Content-Type: command/reply\nReply-Text: +OK accepted\n\n"))
	f.Add([]byte(esltest.FrameEvent(esltest.RegisterFailure("1001", "198.51.100.7", "5060", "friendly-scanner", "REGISTER"))))
	f.Add([]byte(esltest.FrameEvent(esltest.ChannelEvent("CHANNEL_HANGUP_COMPLETE", "37e9b766-5256-4e4b-b1ed-3767b930fec8"))))
	f.Add([]byte(esltest.DisconnectNotice))
	f.Add([]byte("Content-Length: 99999999999\n\n"))
	m := NewMapper()
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := NewReader(bytes.NewReader(b))
		for range 8 {
			fr, err := rd.ReadFrame()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrame) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if cl := fr.Header("Content-Length"); cl != "" && len(fr.Body) > MaxContentLength {
				t.Fatalf("body of %d bytes over the limit", len(fr.Body))
			}
			if fr.ContentType() == "text/event-plain" {
				if ev, err := ParsePlain(fr.Body); err == nil {
					m.Map(ev)
				}
			}
		}
	})
}

// FuzzParsePlain parses arbitrary event text and maps it.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte(esltest.RegisterAttempt("1001", "1001", "198.51.100.7", "5060", "x", "FORBIDDEN")))
	f.Add([]byte(esltest.RegisterOK("1001", "192.0.2.1", "5060", "Yealink")))
	f.Add([]byte(esltest.WrongCallState("1001", "198.51.100.7", "5060")))
	f.Add([]byte(esltest.BackgroundJob("id", "status", "UP\n")))
	f.Add([]byte("Event-Name: CUSTOM\nuser-agent: %ZZ%%41ARRAY::a|:b\n\n"))
	m := NewMapper()
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParsePlain(b)
		if err != nil {
			if !errors.Is(err, ErrFrame) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if out, _ := m.Map(ev); out != nil && out.Base().Source.Addr().Is4In6() {
			t.Fatalf("source %v not unmapped", out.Base().Source)
		}
	})
}
