package sipfw

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"time"

	"github.com/gobwas/ws"
)

// readWS serves one WebSocket connection after its TCP (and, for wss://,
// TLS) handshake: the HTTP upgrade, then one SIP message per WebSocket
// message until the connection fails or idles out. Deadlines are those of
// readStream: the upgrade and the first SIP message within firstBy; then
// UnregisteredIdle after the last complete SIP message (pings and
// keep-alives do not extend it), or RegisteredIdle after the last byte once
// a REGISTER succeeded on the connection.
func (p *Proxy) readWS(sc *streamConn, firstBy time.Time) {
	_ = sc.c.SetDeadline(firstBy)
	if err := p.wsHandshake(sc.c); err != nil {
		switch {
		case errors.Is(err, errWSOrigin):
			p.m.drop(dropWSOrigin)
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.m.drop(dropConnIdle)
		default:
			p.m.drop(dropWS)
		}
		p.log.Debug("websocket handshake refused", "src", sc.remote, "error", capq(err.Error()))
		return
	}
	_ = sc.c.SetWriteDeadline(time.Time{})
	r := newWSReader(bufio.NewReaderSize(sc.c, 2048), p.o.MaxMessageSize)
	lastMsg, first := time.Now(), true
	for {
		p.setIdleDeadline(sc, false, first, firstBy, lastMsg)
		op, data, err := r.next()
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				p.m.drop(dropConnIdle)
			case errors.Is(err, errWSTooLarge):
				p.m.drop(dropTooLarge)
				writeClose(sc.c, ws.StatusMessageTooBig)
			case errors.Is(err, errWSProtocol):
				p.m.drop(dropWS)
				writeClose(sc.c, ws.StatusProtocolError)
			}
			return
		}
		switch op {
		case ws.OpPing:
			sc.enqueue(wsFrameOp(ws.OpPong, data)) // RFC 6455 §5.5.3
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			writeClose(sc.c, ws.StatusNormalClosure) // RFC 6455 §5.5.1
			return
		}
		if isKeepalive(data) {
			if bytes.Equal(data, []byte("\r\n\r\n")) {
				sc.enqueue(wsFrame([]byte("\r\n"))) // RFC 5626 §3.5.1 pong
			}
			continue
		}
		msg, err := p.parser.ParseSIP(data)
		if err != nil {
			p.malformed(data, sc.remote, err)
			continue // the message had its own boundary: the next one may be fine
		}
		now := p.now()
		lastMsg, first = time.Now(), false
		if !sc.registered.Load() {
			p.conns.touch(sc)
		}
		in := inbound{from: flow{lis: sc.lis, remote: sc.remote}, at: now}
		p.handle(msg, &in)
	}
}
