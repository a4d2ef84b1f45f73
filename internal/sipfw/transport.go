package sipfw

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
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
		up := isUpstreamDatagram(l, src)
		reject := false
		if !up && !l.route.admits(src.Addr()) {
			p.m.drop(dropRoute) // not this route's source: silent, like a ban
			continue
		}
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
// Gate is asked before the TLS handshake and before any read; then the
// connection table's caps apply (see connTable.add).
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
		// An accepted connection is never the PBX, even from its address:
		// only the connection the proxy dialled is (upstreamDialer).
		if !l.route.admits(ra.Addr()) {
			p.m.drop(dropRoute)
			_ = c.Close()
			continue
		}
		if v := p.o.Gate.Admit(ra.Addr(), p.now()); v.Action != engine.Pass {
			p.m.drop(dropGate)
			_ = c.Close()
			continue
		}
		raw := c
		if l.network == "tls" || l.network == "wss" {
			c = tls.Server(c, p.o.TLS)
		}
		sc := newStreamConn(c, l, ra, false)
		sc.raw = raw
		evicted, ok := p.conns.add(sc)
		if evicted != nil {
			p.m.drop(dropConnEvict)
			evicted.close()
		}
		if !ok {
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
//
// Deadlines (RFC 5626 §4.4.1 keep-alives are CRLF pairs):
//   - a new connection has FirstMessageTimeout for its TLS handshake and
//     first complete message;
//   - one that never registered is closed UnregisteredIdle after its last
//     complete message: bytes and keep-alives do not extend it, so a
//     slowloris or a CRLF trickle cannot hold a slot;
//   - one a REGISTER succeeded on (and the PBX's) lives RegisteredIdle
//     after its last byte, so a phone's keep-alives keep it open.
func (p *Proxy) readStream(ctx context.Context, sc *streamConn) {
	defer p.conns.remove(sc)
	start := time.Now()
	// Until the peer sends its first byte the connection holds no buffer,
	// parser or handshake state: an idle flood costs a goroutine and a
	// socket per connection, not kilobytes of buffers.
	firstBy := start.Add(p.o.FirstMessageTimeout)
	if sc.up {
		firstBy = start.Add(p.o.RegisteredIdle) // the PBX speaks when asked
	}
	_ = sc.c.SetReadDeadline(firstBy)
	if err := waitReadable(sc.raw); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.m.drop(dropConnIdle)
		}
		return
	}
	if tc, ok := sc.c.(*tls.Conn); ok {
		// A deadline rather than a context: HandshakeContext would start a
		// goroutine per connection to watch the context.
		_ = tc.SetDeadline(start.Add(p.o.FirstMessageTimeout))
		err := tc.Handshake()
		_ = tc.SetWriteDeadline(time.Time{})
		if err != nil {
			p.m.drop(dropTLS)
			p.log.Debug("tls handshake failed", "src", sc.remote, "error", capq(err.Error()))
			return
		}
	}
	if sc.lis.isWS() {
		p.readWS(sc, firstBy)
		return
	}
	par := p.parser.NewSIPStream()
	defer par.Close()
	buf := make([]byte, 2048)
	lastMsg, first := start, true
	for {
		p.setIdleDeadline(sc, sc.up, first, firstBy, lastMsg)
		n, err := sc.c.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				p.m.drop(dropConnIdle)
			}
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
			now := p.now()
			lastMsg, first = time.Now(), false
			if !sc.up && !sc.registered.Load() {
				p.conns.touch(sc)
			}
			in := inbound{from: flow{lis: sc.lis, remote: sc.remote}, up: sc.up, at: now}
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
// reading cannot stall the read loops that forward to it. The writer
// starts with the first write: an idle connection costs one goroutine.
type streamConn struct {
	c          net.Conn
	raw        net.Conn // c, or the TCP connection under TLS
	lis        *listener
	remote     netip.AddrPort
	source     netip.Prefix // the per-source key: the address, or its /64
	up         bool
	registered atomic.Bool // a REGISTER on it got a 2xx with a non-zero expiry
	qlen       int
	q          chan []byte // made with the writer, at the first write
	done       chan struct{}
	once       sync.Once
	writer     sync.Once
}

// Write queue depths: the PBX's connection carries every phone's traffic.
const (
	clientQueue   = 32
	upstreamQueue = 1024
)

func newStreamConn(c net.Conn, l *listener, remote netip.AddrPort, up bool) *streamConn {
	n := clientQueue
	if up {
		n = upstreamQueue
	}
	return &streamConn{c: c, raw: c, lis: l, remote: remote, source: sourceKey(remote.Addr()), up: up,
		qlen: n, done: make(chan struct{})}
}

// sourceKey groups addresses for the per-source cap: an IPv4 address, or
// an IPv6 /64 (one subscriber's allocation; counting single IPv6
// addresses would let one host open a cap's worth per address).
func sourceKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	pf, _ := a.Prefix(bits)
	return pf
}

// enqueue queues b for writing; it reports false when the queue is full or
// the connection closed. b must not be reused by the caller.
func (s *streamConn) enqueue(b []byte) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.writer.Do(func() {
		s.q = make(chan []byte, s.qlen)
		go s.writeLoop()
	})
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

// connTable maps a peer's address to its connection. It holds at most max
// connections and perSource per source key; the PBX's connection counts
// toward neither cap. Connections that never registered are kept in
// order of their last complete message, so the idlest can be evicted.
type connTable struct {
	mu        sync.RWMutex
	max       int
	perSource int
	m         map[netip.AddrPort]*streamConn
	sources   map[netip.Prefix]int
	unreg     *fifo[*streamConn, struct{}]
}

func newConnTable(max, perSource int) *connTable {
	return &connTable{max: max, perSource: perSource, m: make(map[netip.AddrPort]*streamConn),
		sources: make(map[netip.Prefix]int), unreg: newFIFO[*streamConn, struct{}](max + 1)}
}

// add admits s. A client's connection is refused when its source holds
// perSource already; when the table is full, the connection that never
// registered and has been idle longest is evicted and returned (the caller
// closes it); with none to evict, s is refused. A registered phone's
// connection is never evicted for a newcomer.
func (t *connTable) add(s *streamConn) (evicted *streamConn, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.m[s.remote]; ok {
		if old.up && !s.up {
			return nil, false // nothing displaces the PBX's connection
		}
		t.drop(old)
		old.close()
	}
	if !s.up && t.sources[s.source] >= t.perSource {
		return nil, false
	}
	if len(t.m) >= t.max {
		victim, _, ok := t.unreg.oldest()
		if !ok {
			return nil, false
		}
		t.drop(victim)
		evicted = victim
	}
	t.m[s.remote] = s
	if !s.up {
		t.sources[s.source]++
		t.unreg.put(s, struct{}{})
	}
	return evicted, true
}

// drop removes s from the table; t.mu must be held.
func (t *connTable) drop(s *streamConn) {
	if t.m[s.remote] != s {
		return
	}
	delete(t.m, s.remote)
	if s.up {
		return
	}
	if n := t.sources[s.source] - 1; n > 0 {
		t.sources[s.source] = n
	} else {
		delete(t.sources, s.source)
	}
	t.unreg.take(s)
}

func (t *connTable) remove(s *streamConn) {
	s.close()
	t.mu.Lock()
	t.drop(s)
	t.mu.Unlock()
}

// touch marks a complete message on an unregistered connection: it becomes
// the last candidate for eviction.
func (t *connTable) touch(s *streamConn) {
	t.mu.Lock()
	if t.m[s.remote] == s && !s.registered.Load() {
		t.unreg.put(s, struct{}{})
	}
	t.mu.Unlock()
}

// setRegistered records that a REGISTER on the connection to a got a 2xx
// (reg) or was a de-registration (!reg). A registration moves the read
// already waiting to idle's deadline: it was set while the connection was
// still unregistered, and a phone that sends nothing until its next
// keep-alive must not be closed at the unregistered deadline.
func (t *connTable) setRegistered(a netip.AddrPort, reg bool, idle time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.m[a]
	if s == nil || s.up {
		return
	}
	s.registered.Store(reg)
	if reg {
		t.unreg.take(s)
		_ = s.c.SetReadDeadline(time.Now().Add(idle))
	} else {
		t.unreg.put(s, struct{}{})
	}
}

func (t *connTable) get(a netip.AddrPort) *streamConn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[a]
}

// len returns the number of connections and of sources holding them.
func (t *connTable) len() (conns, sources int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m), len(t.sources)
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
	out := buf.Bytes()
	if sc.lis.isWS() {
		out = wsFrame(out) // RFC 7118 §5.1: one SIP message per WebSocket message
	} else {
		out = bytes.Clone(out)
	}
	if !sc.enqueue(out) {
		return errQueueFull
	}
	return nil
}

// setIdleDeadline sets sc's read deadline for its next message: a registered
// connection (or, with always, the upstream's) has RegisteredIdle from now;
// one that has sent nothing yet (first) must speak by firstBy; any other has
// UnregisteredIdle from its last message.
func (p *Proxy) setIdleDeadline(sc *streamConn, always, first bool, firstBy, lastMsg time.Time) {
	var dl time.Time
	reg := always || sc.registered.Load()
	switch {
	case reg:
		dl = time.Now().Add(p.o.RegisteredIdle)
	case first:
		dl = firstBy
	default:
		dl = lastMsg.Add(p.o.UnregisteredIdle)
	}
	_ = sc.c.SetReadDeadline(dl)
	if !reg && sc.registered.Load() {
		// Registered between the check and the deadline: setRegistered's
		// extension may have been overwritten.
		_ = sc.c.SetReadDeadline(time.Now().Add(p.o.RegisteredIdle))
	}
}
