// Package sipfw is tollguard's inline SIP proxy: the public SIP endpoint in
// front of a PBX on a private address. It reads UDP, TCP, TLS and
// WebSocket (RFC 7118), asks the engine's Gate about every datagram and
// connection before parsing, hands a typed event for every request and
// final response to the engine's Checker, and forwards what passes
// statelessly (RFC 3261 §16.11) to the upstream of the listener's route
// (one per PBX profile), or from that PBX back to phones through the flows
// they registered on.
package sipfw

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tollguard/tollguard/internal/engine"
)

// Options configures a Proxy. Checker, Gate and at least one route
// (Listen and Upstream, or Routes) are required; the rest have defaults.
type Options struct {
	// Listen lists public listeners: "udp://0.0.0.0:5060", "tcp://…",
	// "tls://…", and "ws://…" or "wss://…" for browser phones (RFC 7118).
	Listen []string
	// Upstream is the PBX: "udp://127.0.0.1:5080" or "tcp://…". The host
	// must be an IP address. Listen and Upstream make the route named
	// "default"; both are empty when Routes holds every route.
	Upstream string
	// AllowSources and DenySources restrict the default route as
	// Route.AllowSources and Route.DenySources do.
	AllowSources, DenySources []netip.Prefix
	// Routes are further listeners bound each to their own upstream (one
	// per FreeSWITCH profile), after the default route.
	Routes []Route
	// Advertise is the IP put in Via and Record-Route on the public side when
	// a listener binds a wildcard address. Empty: the address of the
	// interface that routes to the upstream.
	Advertise string
	// WSOrigins lists the browser origins ("https://app.example.com") whose
	// pages may open a WebSocket; "*" allows any. A client without an
	// Origin header (no browser) and a page on the guard's own host are
	// always allowed (see originAllowed).
	WSOrigins []string
	// TLS is the server config for tls:// and wss:// listeners, with ClientCAs and
	// ClientAuth already set for mutual TLS; nil if there are none.
	TLS *tls.Config
	// BannedResponse is "drop" (default) or "reject": what a datagram from a
	// source the Gate refuses gets. Connections are always closed.
	BannedResponse string
	// UpstreamTimeout is how long a request waits for the PBX before the
	// client gets 503. Default 2s.
	UpstreamTimeout time.Duration
	// MaxMessageSize bounds accepted messages. Default 65535.
	MaxMessageSize int
	// Checker gets every event, synchronously; never nil.
	Checker engine.Checker
	// Gate is asked about every datagram and new connection before parsing.
	Gate engine.Gate
	// Greylist, when set, is asked about every request over UDP from
	// outside that the Checker passed, except ACK and CANCEL; a request it
	// refuses is held (dropped unanswered) until its client retransmits
	// it. Nil forwards at once.
	Greylist engine.Greylister
	// Logger receives the proxy's own log lines; nil discards them.
	Logger *slog.Logger
	// Registry receives the proxy's metrics; nil keeps them unregistered.
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// FlowKey authenticates flow tokens (LoadOrCreateFlowKey); nil draws a
	// random key, valid for this process only.
	FlowKey []byte
	// StripHeaders names headers removed from every request from outside,
	// in any letter case and under their compact form. nil means
	// DefaultStripHeaders. X-AUTH-IP and X-AUTH-PORT are always removed:
	// the proxy writes its own.
	StripHeaders []string
	// TokenHeader is the call token header (call_tokens.header): its
	// value on an initial INVITE goes to the Checker in event.SIP.Token,
	// and the header is removed before the PBX sees the request.
	TokenHeader string
	// MaxConnections bounds TCP and TLS connections in all. Default 16384.
	MaxConnections int
	// MaxConnectionsPerSource bounds the connections of one IPv4 address or
	// one IPv6 /64. Default 64.
	MaxConnectionsPerSource int
	// FirstMessageTimeout is how long a new connection has for its TLS
	// handshake and first complete message. Default 5s.
	FirstMessageTimeout time.Duration
	// UnregisteredIdle closes a connection that never registered when no
	// complete message arrived for this long (keep-alives do not count).
	// Default 30s.
	UnregisteredIdle time.Duration
	// RegisteredIdle closes a connection a REGISTER got a 2xx on after this
	// long without any byte, CRLF keep-alives included. Default 10m.
	RegisteredIdle time.Duration
	// DialogTimeout forgets an answered call that saw no BYE this long
	// after its answer (a lost BYE, a crashed phone): it is no longer
	// listed or hung up, and a tapped call ends with cause "timeout".
	// Default 12h.
	DialogTimeout time.Duration

	dialogLimit int // bound of each dialog table; 0 means maxDialogs (tests set it lower)
}

// DefaultStripHeaders are the identity headers a PBX may trust from its
// proxy, so a client must never be able to set them.
var DefaultStripHeaders = []string{"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID",
	"X-Forwarded-For", "X-Real-IP", "X-AUTH-IP", "X-AUTH-PORT"}

// Table bounds. A spoofed flood can fill them but never grow them.
// maxDialogs bounds unanswered calls, INVITEs to phones and running calls
// each (see dialogTable).
const (
	maxPending    = 100_000
	maxDialogs    = 65_536
	ringTTL       = 3 * time.Minute // RFC 3261 §16.6 step 11, Timer C
	writeTimeout  = 2 * time.Second
	probeInterval = 500 * time.Millisecond
)

// Proxy is the inline SIP proxy. Create it with New and start it with Run;
// a Proxy runs once.
type Proxy struct {
	o      Options
	log    *slog.Logger
	m      *metrics
	parser *sip.Parser
	now    func() time.Time

	routes []*upstream // the default route first, then Options.Routes

	ctx       context.Context
	listeners []*listener // public listeners first, then internal ones
	conns     *connTable
	pending   *pendingTable
	dialogs   *dialogTable
	byes      byeTable
	flows     *flowCodec
	strip     map[string]bool // lower-case names, compact forms included

	ready   chan struct{}
	addrsMu sync.Mutex
	addrs   map[string]net.Addr
	ran     bool
}

// listener is one bound socket and how it names itself in SIP headers.
type listener struct {
	idx       int
	url       string // as configured; "" for internal listeners
	network   string // "udp", "tcp" or "tls"
	viaProto  string // "UDP", "TCP" or "TLS"
	bind      netip.AddrPort
	advHost   string // host put in Via / Record-Route / Path
	advPort   int
	pc        *net.UDPConn
	ln        net.Listener
	transport string    // event.Transport value
	route     *upstream // the route the listener belongs to
}

// New validates o and returns a Proxy ready to Run.
func New(o Options) (*Proxy, error) {
	if o.Checker == nil || o.Gate == nil {
		return nil, errors.New("sipfw: Checker and Gate are required")
	}
	routes, err := buildRoutes(&o)
	if err != nil {
		return nil, fmt.Errorf("sipfw: %w", err)
	}
	if o.Advertise != "" {
		if _, err := netip.ParseAddr(o.Advertise); err != nil {
			return nil, fmt.Errorf("sipfw: advertise %q: %w", o.Advertise, err)
		}
	}
	switch o.BannedResponse {
	case "":
		o.BannedResponse = "drop"
	case "drop", "reject":
	default:
		return nil, fmt.Errorf("sipfw: banned_response %q: want drop or reject", o.BannedResponse)
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = 2 * time.Second
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 65535
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlowKey == nil {
		k, err := randomFlowKey()
		if err != nil {
			return nil, fmt.Errorf("sipfw: %w", err)
		}
		o.FlowKey = k
	}
	if len(o.FlowKey) < 16 {
		return nil, fmt.Errorf("sipfw: flow key of %d bytes is too short", len(o.FlowKey))
	}
	if o.StripHeaders == nil {
		o.StripHeaders = DefaultStripHeaders
	}
	stripNames := o.StripHeaders
	if o.TokenHeader != "" {
		stripNames = append(slices.Clone(stripNames), o.TokenHeader)
	}
	strip, err := stripSet(stripNames)
	if err != nil {
		return nil, fmt.Errorf("sipfw: %w", err)
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 16_384
	}
	if o.MaxConnectionsPerSource <= 0 {
		o.MaxConnectionsPerSource = 64
	}
	if o.FirstMessageTimeout <= 0 {
		o.FirstMessageTimeout = 5 * time.Second
	}
	if o.UnregisteredIdle <= 0 {
		o.UnregisteredIdle = 30 * time.Second
	}
	if o.RegisteredIdle <= 0 {
		o.RegisteredIdle = 10 * time.Minute
	}
	if o.DialogTimeout <= 0 {
		o.DialogTimeout = 12 * time.Hour
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("sipfw: registering metrics: %w", err)
	}
	parser := sip.NewParser()
	parser.MaxMessageLength = o.MaxMessageSize
	p := &Proxy{
		o: o, log: log.With("component", "sipfw"), m: m, parser: parser, now: o.Now,
		routes:  routes,
		conns:   newConnTable(o.MaxConnections, o.MaxConnectionsPerSource),
		flows:   newFlowCodec(o.FlowKey),
		strip:   strip,
		pending: newPendingTable(maxPending),
		dialogs: newDialogTable(cmp.Or(o.dialogLimit, maxDialogs), o.DialogTimeout),
		ctx:     context.Background(),
		ready:   make(chan struct{}),
		addrs:   make(map[string]net.Addr),
	}
	for _, r := range routes {
		r.dialer.p, r.dialer.r = p, r
		m.upstream.WithLabelValues(r.name).Set(1)
	}
	if o.Registry != nil {
		err := o.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tollguard_sipfw_connections",
			Help: "TCP and TLS connections held, the PBX's included.",
		}, func() float64 { n, _ := p.conns.len(); return float64(n) }))
		if err == nil {
			err = o.Registry.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tollguard_sipfw_calls",
				Help: "Answered calls through the proxy that have not ended.",
			}, func() float64 { return float64(p.dialogs.running()) }))
		}
		if err != nil {
			return nil, fmt.Errorf("sipfw: registering metrics: %w", err)
		}
	}
	return p, nil
}

// parseURL splits "udp://host:port" into its network and address.
func parseURL(s string) (string, netip.AddrPort, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("parsing %q: %w", s, err)
	}
	n := strings.ToLower(u.Scheme)
	switch n {
	case "udp", "tcp", "tls", "ws", "wss":
	default:
		return "", netip.AddrPort{}, fmt.Errorf("%q: scheme must be udp, tcp, tls, ws or wss", s)
	}
	ap, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("%q: want an IP address and a port: %w", s, err)
	}
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Ready is closed once every listener is bound.
func (p *Proxy) Ready() <-chan struct{} { return p.ready }

// Addrs maps each listen URL to its bound address, with port 0 resolved.
// It is complete once Ready is closed.
func (p *Proxy) Addrs() map[string]net.Addr {
	p.addrsMu.Lock()
	defer p.addrsMu.Unlock()
	out := make(map[string]net.Addr, len(p.addrs))
	for k, v := range p.addrs {
		out[k] = v
	}
	return out
}

// Run binds every listener, serves until ctx is done, then closes the
// listeners and connections and returns nil. It returns an error if a
// listener cannot be bound. Run may be called once.
func (p *Proxy) Run(ctx context.Context) error {
	if p.ran {
		return errors.New("sipfw: Run called twice")
	}
	p.ran = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.ctx = ctx
	if err := p.bind(); err != nil {
		p.closeAll()
		return err
	}
	close(p.ready)
	for _, r := range p.routes {
		p.log.Info("proxy listening", "route", r.name, "listeners", len(r.listen), "upstream", r.url)
	}

	g, gctx := errgroup.WithContext(ctx)
	for _, l := range p.listeners {
		switch l.network {
		case "udp":
			for range udpReaders() {
				g.Go(func() error { p.serveUDP(gctx, l); return nil })
			}
		default:
			g.Go(func() error { p.serveStream(gctx, l); return nil })
		}
	}
	g.Go(func() error { p.sweep(gctx); return nil })
	<-gctx.Done()
	p.closeAll()
	_ = g.Wait()
	p.log.Info("proxy stopped")
	return nil
}

func (p *Proxy) closeAll() {
	for _, l := range p.listeners {
		if l.pc != nil {
			_ = l.pc.Close()
		}
		if l.ln != nil {
			_ = l.ln.Close()
		}
	}
	p.conns.closeAll()
}

// bind opens every route's listeners and decides the advertised
// addresses.
func (p *Proxy) bind() error {
	for _, r := range p.routes {
		if err := p.bindRoute(r); err != nil {
			return err
		}
	}
	return nil
}

// bindRoute opens r's listeners and its inside listener.
func (p *Proxy) bindRoute(r *upstream) error {
	route := routeIP(r.addr)
	var own []*listener
	for _, s := range r.listen {
		network, ap, _ := parseURL(s)
		l := &listener{idx: len(p.listeners), url: s, network: network, route: r}
		if err := p.open(l, ap); err != nil {
			return err
		}
		l.advHost = l.bind.Addr().String()
		if l.bind.Addr().IsUnspecified() {
			l.advHost = route.String()
			if p.o.Advertise != "" {
				l.advHost = p.o.Advertise
			}
		}
		p.listeners = append(p.listeners, l)
		own = append(own, l)
		p.addrsMu.Lock()
		if l.pc != nil {
			p.addrs[s] = l.pc.LocalAddr()
		} else {
			p.addrs[s] = l.ln.Addr()
			if ta, ok := l.ln.Addr().(*net.TCPAddr); ok && l.network == "tls" {
				p.addrs[s] = tlsAddr{ta}
			}
		}
		p.addrsMu.Unlock()
	}
	// The inside listener faces the PBX: the route's first listener of the
	// upstream's transport, advertised under the address that routes to
	// the PBX; a private socket when there is none.
	for _, l := range own {
		if l.network == r.net {
			in := *l
			in.advHost = l.bind.Addr().String()
			if l.bind.Addr().IsUnspecified() {
				in.advHost = route.String()
			}
			r.inside = &in
			break
		}
	}
	if r.inside == nil {
		l := &listener{idx: len(p.listeners), network: r.net, route: r}
		if err := p.open(l, netip.AddrPortFrom(route, 0)); err != nil {
			return err
		}
		l.advHost = route.String()
		p.listeners = append(p.listeners, l)
		r.inside = l
	}
	return nil
}

// tlsAddr is a TLS listener's address: a TCP address that names its
// network "tls", so logs print tls://, not tcp://.
type tlsAddr struct{ *net.TCPAddr }

// Network implements net.Addr.
func (tlsAddr) Network() string { return "tls" }

// udpReadBuffer is the receive buffer asked for on UDP listeners.
const udpReadBuffer = 8 << 20

// open binds l to ap.
func (p *Proxy) open(l *listener, ap netip.AddrPort) error {
	l.viaProto = strings.ToUpper(l.network)
	l.transport = l.network
	switch l.network {
	case "udp":
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fmt.Errorf("sipfw: listening on udp %s: %w", ap, err)
		}
		// A deep receive buffer rides out bursts (a banned flood shares the
		// socket with phones). The kernel caps it at net.core.rmem_max; a
		// smaller buffer still works, so the error is not fatal.
		_ = pc.SetReadBuffer(udpReadBuffer)
		l.pc = pc
		l.bind = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	default:
		ln, err := net.Listen("tcp", ap.String())
		if err != nil {
			return fmt.Errorf("sipfw: listening on %s %s: %w", l.network, ap, err)
		}
		l.ln = ln
		l.bind = ln.Addr().(*net.TCPAddr).AddrPort()
	}
	l.bind = netip.AddrPortFrom(l.bind.Addr().Unmap(), l.bind.Port())
	l.advPort = int(l.bind.Port())
	return nil
}

// isUpstreamDatagram reports whether a datagram from src on l comes from
// the PBX of l's route: its configured address and port, on a UDP
// upstream. The same address on another port, or on another route's
// listener, is an outside client like any other (a local user on the
// PBX's host, a second service there, or another profile is not this
// route's PBX). Over TCP only the connection the proxy dialled is the PBX.
func isUpstreamDatagram(l *listener, src netip.AddrPort) bool {
	return l.route.net == "udp" && src == l.route.addr
}
