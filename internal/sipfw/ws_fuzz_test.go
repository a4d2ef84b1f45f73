package sipfw

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

// FuzzWSReader feeds arbitrary bytes to the WebSocket frame reader: it
// must never panic, never return a message over its limit, and end every
// stream with an error (EOF at the latest) after finitely many messages.
func FuzzWSReader(f *testing.F) {
	msg := []byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n")
	f.Add(clientFrame(true, ws.OpText, 0, msg))
	f.Add(cat(clientFrame(false, ws.OpText, 0, msg[:4]), clientFrame(true, ws.OpPing, 0, []byte("x")), clientFrame(true, ws.OpContinuation, 0, msg[4:])))
	f.Add(clientFrame(true, ws.OpClose, 0, ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 256
		r := newWSReader(bytes.NewReader(data), max)
		for i := 0; ; i++ {
			op, p, err := r.next()
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errWSProtocol) || errors.Is(err, errWSTooLarge) {
					return
				}
				t.Fatalf("unexpected error %v", err)
			}
			if len(p) > max {
				t.Fatalf("message of %d bytes over the limit %d", len(p), max)
			}
			if op.IsControl() && len(p) > 125 {
				t.Fatalf("control frame of %d bytes", len(p))
			}
			if i > len(data) {
				t.Fatalf("%d messages from %d bytes", i, len(data))
			}
		}
	})
}
