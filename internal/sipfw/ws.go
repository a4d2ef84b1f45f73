package sipfw

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// WebSocket transport for browser phones (RFC 7118) in front of
// FreeSWITCH's ws-binding / wss-binding. A WebSocket connection is a
// stream connection like TCP and TLS: the same Gate check at accept,
// per-source and total caps, deadlines and flows. The HTTP upgrade must
// complete within first_message_timeout and offer the "sip" subprotocol
// (RFC 7118 §4.1); a completed handshake proves the source as a TCP
// handshake does. Each WebSocket message carries one SIP message (RFC 7118
// §5.1).

// Errors of the WebSocket layer; each closes the connection.
var (
	errWSProtocol = errors.New("websocket protocol error")
	errWSTooLarge = errors.New("websocket message too large")
	errWSNoSIP    = errors.New(`websocket client did not offer the "sip" subprotocol`)
	errWSOrigin   = errors.New("websocket origin not allowed")
)

// wsMaxFrames bounds the frames of one fragmented message, and
// wsMaxControl the control frames (ping, pong) between two complete
// messages: a client that only pings is flooding, not keeping alive.
const (
	wsMaxFrames  = 1024
	wsMaxControl = 32
)

// isWS reports whether the listener speaks SIP over WebSocket.
func (l *listener) isWS() bool { return l.network == "ws" || l.network == "wss" }

// wsHandshake reads the client's HTTP upgrade and answers it (RFC 6455
// §4.2). It refuses a client that does not offer the "sip" subprotocol
// (RFC 7118 §4.1) with 400, and a browser page whose origin is not
// allowed (see originAllowed) with 403. The caller sets the deadline.
func (p *Proxy) wsHandshake(c io.ReadWriter) error {
	var origin, host string
	offered := false
	var refused error
	u := ws.Upgrader{
		ReadBufferSize: 4096, // the request line and headers must fit
		Protocol: func(b []byte) bool {
			if string(b) == "sip" {
				offered = true
				return true
			}
			return false
		},
		OnHost: func(h []byte) error { host = string(h); return nil },
		OnHeader: func(k, v []byte) error {
			if strings.EqualFold(string(k), "Origin") {
				origin = string(v)
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if !offered {
				refused = errWSNoSIP
				return nil, ws.RejectConnectionError(ws.RejectionStatus(400), ws.RejectionReason(errWSNoSIP.Error()))
			}
			if !originAllowed(origin, host, p.o.WSOrigins) {
				refused = errWSOrigin
				return nil, ws.RejectConnectionError(ws.RejectionStatus(403), ws.RejectionReason(errWSOrigin.Error()))
			}
			return ws.HandshakeHeaderString(""), nil
		},
	}
	if _, err := u.Upgrade(c); err != nil {
		if refused != nil {
			return refused
		}
		return fmt.Errorf("%w: %w", errWSProtocol, err)
	}
	return nil
}

// originAllowed decides the browser Origin (RFC 6454) a handshake may
// come from. Without an Origin header the client is no browser (a native
// softphone) and is allowed. A page on the guard's own host is allowed.
// Any other page only when allowed lists its origin, or "*": otherwise any
// web site could make its visitors' browsers guess passwords through the
// guard, each from its own address, past per-source bans.
func originAllowed(origin, host string, allowed []string) bool {
	if origin == "" {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(a, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || host == "" {
		return false
	}
	return strings.EqualFold(u.Host, host)
}

// wsReader reads client frames (RFC 6455 §5) and returns whole messages
// and control frames. It enforces what a server must: every client frame
// masked (§5.1), no reserved bits or opcodes without an extension (§5.2),
// control frames unfragmented and at most 125 bytes (§5.5), continuation
// only inside a fragmented message (§5.4); and what the proxy needs: a
// message at most max bytes, checked before its payload is read.
type wsReader struct {
	r       io.Reader
	max     int
	msg     []byte
	frames  int
	inMsg   bool
	control int
}

func newWSReader(r io.Reader, max int) *wsReader { return &wsReader{r: r, max: max} }

// next returns the next complete data message or control frame. The
// payload is valid until the next call.
func (w *wsReader) next() (ws.OpCode, []byte, error) {
	for {
		h, err := ws.ReadHeader(w.r)
		if err != nil {
			if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
				return 0, nil, fmt.Errorf("%w: %w", errWSProtocol, err)
			}
			return 0, nil, err
		}
		if h.Rsv != 0 || !h.Masked || h.OpCode.IsReserved() {
			return 0, nil, errWSProtocol
		}
		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > 125 {
				return 0, nil, errWSProtocol
			}
			w.control++
			if w.control > wsMaxControl {
				return 0, nil, fmt.Errorf("%w: %d control frames without a message", errWSProtocol, w.control)
			}
			buf := make([]byte, h.Length)
			if _, err := io.ReadFull(w.r, buf); err != nil {
				return 0, nil, err
			}
			ws.Cipher(buf, h.Mask, 0)
			return h.OpCode, buf, nil
		}
		switch {
		case h.OpCode == ws.OpContinuation && !w.inMsg:
			return 0, nil, errWSProtocol
		case h.OpCode != ws.OpContinuation && w.inMsg:
			return 0, nil, errWSProtocol
		case h.OpCode != ws.OpContinuation:
			w.inMsg, w.msg, w.frames = true, w.msg[:0], 0
		}
		w.frames++
		if w.frames > wsMaxFrames {
			return 0, nil, fmt.Errorf("%w: more than %d frames in one message", errWSProtocol, wsMaxFrames)
		}
		if h.Length < 0 || int64(len(w.msg))+h.Length > int64(w.max) {
			return 0, nil, errWSTooLarge
		}
		start := len(w.msg)
		w.msg = append(w.msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(w.r, w.msg[start:]); err != nil {
			return 0, nil, err
		}
		ws.Cipher(w.msg[start:], h.Mask, 0)
		if h.Fin {
			w.inMsg, w.control = false, 0
			out := w.msg
			w.msg = nil // the parser may keep slices of the message
			return ws.OpText, out, nil
		}
	}
}

// wsFrame frames a SIP message as one unmasked server frame (RFC 6455
// §5.1): text when it is UTF-8, binary otherwise (RFC 7118 §5.1 allows
// both; a text frame must hold UTF-8).
func wsFrame(payload []byte) []byte {
	op := ws.OpText
	if !utf8.Valid(payload) {
		op = ws.OpBinary
	}
	return wsFrameOp(op, payload)
}

func wsFrameOp(op ws.OpCode, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payload) + ws.MaxHeaderSize)
	_ = ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: op, Length: int64(len(payload))})
	b.Write(payload)
	return b.Bytes()
}

// wsCloseFrame is a close frame with code (RFC 6455 §5.5.1).
func wsCloseFrame(code ws.StatusCode) []byte {
	return wsFrameOp(ws.OpClose, ws.NewCloseFrameBody(code, ""))
}

// writeClose sends a close frame straight to c, for a connection about to
// be closed; the write queue may not run again.
func writeClose(c net.Conn, code ws.StatusCode) {
	_, _ = c.Write(wsCloseFrame(code))
}
