package sipfw

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/engine"
)

// udpReaders is how many goroutines read each UDP socket.
func udpReaders() int { return min(runtime.GOMAXPROCS(0), 4) }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// inbound describes where a message came from.
type inbound struct {
	from flow
	up   bool      // sent by the upstream PBX
	at   time.Time // when it was read
}

// serveUDP reads datagrams from l until ctx is done. Banned sources are
// refused by the Gate before a byte is parsed (DESIGN key decision 3).
func (p *Proxy) serveUDP(ctx context.Context, l *listener) {
	buf := make([]byte, 65536)
	for {
		n, src, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		data := buf[:n]
		if isKeepalive(data) {
			continue
		}
		now := p.now()
		up := p.isUpstream(src.Addr())
		reject := false
		if !up {
			v := p.o.Gate.Admit(src.Addr(), now)
			if v.Action != engine.Pass {
				p.m.drop(dropGate)
				if v.Action != engine.Reject && p.o.BannedResponse != "reject" {
					continue
				}
				reject = true
			}
		}
		if n > p.o.MaxMessageSize {
			p.m.drop(dropTooLarge)
			continue
		}
		msg, err := p.parser.ParseSIP(data)
		if err != nil {
			p.malformed(data, src, err)
			continue
		}
		in := inbound{from: flow{lis: l, remote: src}, up: up, at: now}
		if reject {
			if req, ok := msg.(*sip.Request); ok {
				p.respond(req, in.from, 403, "Forbidden")
			}
			continue
		}
		p.handle(msg, &in)
	}
}

// isKeepalive reports whether data is a CRLF keep-alive (RFC 5626 §3.5.1)
// or padding.
func isKeepalive(data []byte) bool {
	for _, c := range data {
		if c != '\r' && c != '\n' && c != 0 {
			return false
		}
	}
	return true
}

// malformed counts an unparsable message and logs a capped, quoted excerpt
// at debug level only: attacker bytes never reach the log raw.
func (p *Proxy) malformed(data []byte, src netip.AddrPort, err error) {
	p.m.drop(dropMalformed)
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("malformed message dropped", "src", src, "error", capq(err.Error()), "excerpt", capq(string(data)))
	}
}

// capq quotes s capped to 120 bytes, for logging attacker text.
func capq(s string) string {
	const max = 120
	if len(s) > max {
		s = s[:max] + "…"
	}
	return quote(s)
}

// serveStream accepts TCP or TLS connections on l until ctx is done. The
// Gate is asked before the TLS handshake and before any read.
func (p *Proxy) serveStream(ctx context.Context, l *listener) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ra := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		ra = netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port())
		up := p.isUpstream(ra.Addr())
		if !up {
			if v := p.o.Gate.Admit(ra.Addr(), p.now()); v.Action != engine.Pass {
				p.m.drop(dropGate)
				_ = c.Close()
				continue
			}
		}
		if l.network == "tls" {
			c = tls.Server(c, p.o.TLS)
		}
		sc := newStreamConn(c, l, ra, up)
		if !p.conns.add(sc) {
			p.m.drop(dropConnLimit)
			_ = c.Close()
			continue
		}
		go p.readStream(ctx, sc)
	}
}

// readStream parses messages from one connection until it fails or idles
// out. A framing error closes the connection: there is no boundary to
// resynchronise on.
func (p *Proxy) readStream(ctx context.Context, sc *streamConn) {
	defer p.conns.remove(sc)
	if tc, ok := sc.c.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, handshakeLimit)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			p.m.drop(dropTLS)
			p.log.Debug("tls handshake failed", "src", sc.remote, "error", capq(err.Error()))
			return
		}
	}
	go sc.writeLoop()
	par := p.parser.NewSIPStream()
	defer par.Close()
	buf := make([]byte, 4096)
	for {
		_ = sc.c.SetReadDeadline(time.Now().Add(streamIdle))
		n, err := sc.c.Read(buf)
		if err != nil {
			return
		}
		data := buf[:n]
		if isKeepalive(data) && par.Buffer().Len() == 0 {
			if bytes.Equal(data, []byte("\r\n\r\n")) {
				sc.enqueue([]byte("\r\n")) // RFC 5626 §3.5.1 pong
			}
			continue
		}
		err = par.ParseSIPStream(data, func(msg sip.Message) {
			in := inbound{from: flow{lis: sc.lis, remote: sc.remote}, up: sc.up, at: p.now()}
			p.handle(msg, &in)
		})
		if err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
			if errors.Is(err, sip.ErrMessageTooLarge) {
				p.m.drop(dropTooLarge)
			} else {
				p.malformed(data, sc.remote, err)
			}
			return
		}
	}
}

// streamConn is one TCP or TLS connection. Writes go through a bounded
// queue drained by the connection's own goroutine, so a peer that stops
// reading cannot stall the read loops that forward to it.
type streamConn struct {
	c      net.Conn
	lis    *listener
	remote netip.AddrPort
	up     bool
	q      chan []byte
	done   chan struct{}
	once   sync.Once
}

func newStreamConn(c net.Conn, l *listener, remote netip.AddrPort, up bool) *streamConn {
	return &streamConn{c: c, lis: l, remote: remote, up: up, q: make(chan []byte, 256), done: make(chan struct{})}
}

// enqueue queues b for writing; it reports false when the queue is full or
// the connection closed. b must not be reused by the caller.
func (s *streamConn) enqueue(b []byte) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	select {
	case s.q <- b:
		return true
	default:
		return false
	}
}

func (s *streamConn) writeLoop() {
	for {
		select {
		case <-s.done:
			return
		case b := <-s.q:
			_ = s.c.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := s.c.Write(b); err != nil {
				s.close()
				return
			}
		}
	}
}

func (s *streamConn) close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.c.Close()
	})
}

// connTable maps a peer's address to its connection, bounded.
type connTable struct {
	mu  sync.RWMutex
	max int
	m   map[netip.AddrPort]*streamConn
}

func newConnTable(max int) *connTable {
	return &connTable{max: max, m: make(map[netip.AddrPort]*streamConn)}
}

func (t *connTable) add(s *streamConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.max {
		return false
	}
	if old, ok := t.m[s.remote]; ok {
		old.close()
	}
	t.m[s.remote] = s
	return true
}

func (t *connTable) remove(s *streamConn) {
	s.close()
	t.mu.Lock()
	if t.m[s.remote] == s {
		delete(t.m, s.remote)
	}
	t.mu.Unlock()
}

func (t *connTable) get(a netip.AddrPort) *streamConn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[a]
}

func (t *connTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.m {
		s.close()
	}
}

// errNoConn means a stream flow's connection is gone (RFC 5626 §5.3).
var errNoConn = errors.New("flow connection is gone")

// errQueueFull means a stream connection's write queue was full.
var errQueueFull = errors.New("write queue full")

// write serialises msg and sends it over f.
func (p *Proxy) write(msg sip.Message, f flow) error {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	msg.StringWrite(buf)
	if f.lis.network == "udp" {
		_, err := f.lis.pc.WriteToUDPAddrPort(buf.Bytes(), f.remote)
		return err
	}
	sc := p.conns.get(f.remote)
	if sc == nil {
		return errNoConn
	}
	if !sc.enqueue(bytes.Clone(buf.Bytes())) {
		return errQueueFull
	}
	return nil
}
