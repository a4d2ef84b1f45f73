// Package pbx is a small SIP PBX for the demo and for tests: a registrar
// with digest authentication, a call answering service for a configured
// number pattern, and outbound calls to registered phones (honouring Path).
// It behaves like FreeSWITCH where the guard depends on it: 401/407
// challenges, 403 for a wrong password and for an unknown user, and
// stale=true for an expired nonce with a correct digest.
package pbx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// DefaultAnswerPattern matches the numbers the PBX answers itself when
// Options.AnswerPattern is empty: external numbers of five digits or more,
// optionally with a leading + or 00.
const DefaultAnswerPattern = `^\+?[0-9]{5,}$`

// DefaultNonceMaxAge is the nonce lifetime when Options.NonceMaxAge is zero
// (FreeSWITCH's nonce-ttl default is 60 s).
const DefaultNonceMaxAge = 60 * time.Second

// Options configures a PBX. Only Accounts is required.
type Options struct {
	// Addr is the listen address, "udp://host:port"; port 0 picks a free
	// port. Empty means "udp://127.0.0.1:0". Only UDP is supported.
	Addr string
	// Realm is the digest realm; empty means the listen host.
	Realm string
	// Accounts maps user (extension) to password. The PBX reads it only
	// during New; later changes are not seen.
	Accounts map[string]string
	// AnswerPattern is a regular expression over the Request-URI user;
	// authenticated INVITEs to matching numbers are answered by the PBX
	// itself. Empty means DefaultAnswerPattern.
	AnswerPattern string
	// NonceMaxAge is how long a nonce stays fresh; older nonces with a
	// correct digest get 401/407 with stale=true. Zero means
	// DefaultNonceMaxAge.
	NonceMaxAge time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fake clock to
	// age nonces.
	Now func() time.Time
	// Logger receives the PBX's logs; nil discards them.
	Logger *slog.Logger
}

// Stats are counters of what the PBX did, for tests and the demo printout.
type Stats struct {
	RegistersOK     uint64 // REGISTERs answered 200 (including un-registers)
	Challenges      uint64 // 401/407 challenges sent (not failures)
	StaleChallenges uint64 // challenges with stale=true
	AuthFailures    uint64 // 403 to requests that carried wrong credentials or an unknown user
	CallsAnswered   uint64 // inbound INVITEs answered 200
	CallsRejected   uint64 // authenticated INVITEs to numbers the PBX does not serve (404)
	CallsEnded      uint64 // BYEs received for answered calls
	CallsPlaced     uint64 // outbound calls answered by a phone (Call)
}

type counters struct {
	registersOK, challenges, stale, authFailures atomic.Uint64
	answered, rejected, ended, placed            atomic.Uint64
}

// PBX is a running demo PBX. Create it with New, then call Run.
// All methods are safe for concurrent use.
type PBX struct {
	network string
	listen  string
	log     *slog.Logger
	auth    *authority
	answer  *regexp.Regexp
	now     func() time.Time

	ready chan struct{}
	addr  netip.AddrPort

	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialogs *sipgo.DialogServerCache
	runCtx  context.Context

	mu       sync.Mutex
	bindings map[string]map[string]*Binding // account → contact URI → binding

	stats counters

	omu     sync.Mutex
	origins map[netip.Addr]Origin
}

// New validates opts and returns a PBX that is not yet listening.
func New(opts Options) (*PBX, error) {
	if len(opts.Accounts) == 0 {
		return nil, errors.New("pbx: no accounts")
	}
	if opts.Addr == "" {
		opts.Addr = "udp://127.0.0.1:0"
	}
	network, hostport, ok := strings.Cut(opts.Addr, "://")
	if !ok || network != "udp" {
		return nil, fmt.Errorf("pbx: address %q: want udp://host:port", opts.Addr)
	}
	if _, err := netip.ParseAddrPort(hostport); err != nil {
		return nil, fmt.Errorf("pbx: address %q: %w", opts.Addr, err)
	}
	pattern := opts.AnswerPattern
	if pattern == "" {
		pattern = DefaultAnswerPattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("pbx: answer pattern: %w", err)
	}
	if opts.NonceMaxAge <= 0 {
		opts.NonceMaxAge = DefaultNonceMaxAge
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Realm == "" {
		opts.Realm = netip.MustParseAddrPort(hostport).Addr().String()
	}
	accounts := make(map[string]string, len(opts.Accounts))
	for u, pw := range opts.Accounts {
		accounts[u] = pw
	}
	return &PBX{
		network:  network,
		listen:   hostport,
		log:      opts.Logger.With("component", "pbx"),
		auth:     newAuthority(opts.Realm, accounts, opts.NonceMaxAge, opts.Now),
		answer:   re,
		now:      opts.Now,
		ready:    make(chan struct{}),
		bindings: make(map[string]map[string]*Binding),
	}, nil
}

// Run listens and serves until ctx is cancelled. It returns nil after a
// clean shutdown, or the listen error. Run may be called once.
func (p *PBX) Run(ctx context.Context) error {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp", p.listen)
	if err != nil {
		return fmt.Errorf("pbx: listening on %s: %w", p.listen, err)
	}
	local := pc.LocalAddr().String()
	p.addr = netip.MustParseAddrPort(local)

	ua, err := sipgo.NewUA(sipgo.WithUserAgent("tollguard-demo-pbx"), sipgo.WithUserAgentHostname(p.addr.Addr().String()))
	if err != nil {
		pc.Close()
		return fmt.Errorf("pbx: creating user agent: %w", err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(p.log))
	if err != nil {
		pc.Close()
		return fmt.Errorf("pbx: creating server: %w", err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(local), sipgo.WithClientLogger(p.log))
	if err != nil {
		pc.Close()
		return fmt.Errorf("pbx: creating client: %w", err)
	}
	p.ua, p.srv, p.client, p.runCtx = ua, srv, cli, ctx
	p.dialogs = sipgo.NewDialogServerCache(cli, p.contact())

	counted := func(h sipgo.RequestHandler) sipgo.RequestHandler {
		return func(req *sip.Request, tx sip.ServerTransaction) {
			p.countOrigin(req, false)
			h(req, tx)
		}
	}
	srv.OnRegister(counted(p.onRegister))
	srv.OnInvite(counted(p.onInvite))
	srv.OnAck(counted(p.onAck))
	srv.OnBye(counted(p.onBye))
	srv.OnOptions(counted(func(req *sip.Request, tx sip.ServerTransaction) {
		respond(tx, sip.NewResponseFromRequest(req, 200, "OK", nil))
	}))

	go func() {
		<-ctx.Done()
		pc.Close()
	}()
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(pc) }()
	waitServing(ctx, ua.TransportLayer(), local)
	close(p.ready)
	p.log.Info("listening", "addr", local, "realm", p.auth.realm)
	err = <-served
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("pbx: serving: %w", err)
}

// Ready is closed once Run is listening; Addr is valid after that.
func (p *PBX) Ready() <-chan struct{} { return p.ready }

// Addr returns the bound listen address. It is valid once Ready is closed.
func (p *PBX) Addr() netip.AddrPort {
	<-p.ready
	return p.addr
}

// Target returns the listen address as a target string "udp://ip:port".
func (p *PBX) Target() string { return "udp://" + p.Addr().String() }

// Realm returns the digest realm.
func (p *PBX) Realm() string { return p.auth.realm }

// Stats returns a snapshot of the counters.
func (p *PBX) Stats() Stats {
	c := &p.stats
	return Stats{
		RegistersOK:     c.registersOK.Load(),
		Challenges:      c.challenges.Load(),
		StaleChallenges: c.stale.Load(),
		AuthFailures:    c.authFailures.Load(),
		CallsAnswered:   c.answered.Load(),
		CallsRejected:   c.rejected.Load(),
		CallsEnded:      c.ended.Load(),
		CallsPlaced:     c.placed.Load(),
	}
}

func (p *PBX) contact() sip.ContactHeader {
	return sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: p.addr.Addr().String(), Port: int(p.addr.Port())}}
}

// respond sends res on tx; a failure means the peer is gone, which the
// PBX cannot do anything about.
func respond(tx sip.ServerTransaction, res *sip.Response) {
	_ = tx.Respond(res)
}

// quote formats attacker-supplied text for logs: quoted and capped.
func quote(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		s = s[:maxLen] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// waitServing blocks until the transport layer has registered the listener
// socket local (sipgo does so at the start of ServeUDP, which runs in its
// own goroutine), so that requests sent from that socket find it, or until
// ctx ends.
func waitServing(ctx context.Context, tp *sip.TransportLayer, local string) {
	for ctx.Err() == nil {
		if _, err := tp.GetConnection("udp", local); err == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
