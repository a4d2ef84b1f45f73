package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// StatusError is a final SIP response that ended an operation unsuccessfully.
type StatusError struct {
	Code   int
	Reason string
}

// Error returns "<code> <reason>".
func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Code, e.Reason) }

// StatusCode returns the SIP status code carried by err, or 0 when err does
// not come from a final response.
func StatusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// PhoneConfig configures a simulated phone.
type PhoneConfig struct {
	// Account and Password are the digest credentials. A wrong Password
	// models a user's typo.
	Account  string
	Password string
	// Target is the registrar and outbound proxy (the PBX or the guard).
	Target netip.AddrPort
	// Source is the phone's own loopback address.
	Source netip.Addr
	// Domain is the SIP domain of the account; empty means the target IP.
	Domain string
	// Expires is the requested registration lifetime in seconds; zero
	// means 60.
	Expires int
	// UserAgent is sent in requests; empty means "tollguard-sim-phone".
	UserAgent string
	// Logger receives the phone's logs; nil discards them.
	Logger *slog.Logger
}

// PhoneReport is what one phone did and saw.
type PhoneReport struct {
	Account          string
	Source           netip.AddrPort
	Registers        int // REGISTER attempts (each with its challenge round)
	Registered       int // REGISTERs that ended 200
	RegisterCodes    map[int]int
	CallsPlaced      int // INVITEs sent
	CallsAnswered    int // outbound calls that got 200, were ACKed and hung up
	CallCodes        map[int]int
	IncomingAnswered int // calls from the target this phone answered
	IncomingEnded    int // of those, ended by BYE from the far end
	Errors           []string
}

// String summarises the report on one line.
func (r PhoneReport) String() string {
	return fmt.Sprintf("phone %-6s from %-21s registered %d/%d %v, calls answered %d/%d %v, incoming %d",
		r.Account, r.Source, r.Registered, r.Registers, r.RegisterCodes, r.CallsAnswered, r.CallsPlaced, r.CallCodes, r.IncomingAnswered)
}

// Phone is a simulated SIP phone: it registers with digest authentication,
// places calls (INVITE, 407, INVITE with credentials, 200, ACK, hold, BYE)
// and answers calls sent to its Contact. Create it with NewPhone and Start
// it before use. Methods are safe for concurrent use.
type Phone struct {
	cfg    PhoneConfig
	log    *slog.Logger
	domain string

	ready   chan struct{}
	local   netip.AddrPort
	client  *sipgo.Client
	outDlg  *sipgo.DialogClientCache
	inDlg   *sipgo.DialogServerCache
	contact sip.ContactHeader
	callID  string

	mu     sync.Mutex
	cseq   uint32
	report PhoneReport
}

// NewPhone returns a phone that is not yet bound.
func NewPhone(cfg PhoneConfig) *Phone {
	if cfg.Expires <= 0 {
		cfg.Expires = 60
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "tollguard-sim-phone"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	domain := domainOr(cfg.Domain, cfg.Target)
	return &Phone{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "sim", "phone", cfg.Account),
		domain: domain,
		ready:  make(chan struct{}),
		callID: randHex(16),
		report: PhoneReport{Account: cfg.Account, RegisterCodes: map[int]int{}, CallCodes: map[int]int{}},
	}
}

// Start binds the phone's UDP socket on Source (ephemeral port) and serves
// incoming requests until ctx ends. It returns once the socket is bound.
func (p *Phone) Start(ctx context.Context) error {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", netip.AddrPortFrom(p.cfg.Source, 0).String())
	if err != nil {
		return fmt.Errorf("sim: phone %s: binding %s: %w", p.cfg.Account, p.cfg.Source, err)
	}
	local := pc.LocalAddr().String()
	p.local = netip.MustParseAddrPort(local)
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(p.cfg.UserAgent), sipgo.WithUserAgentHostname(p.domain))
	if err != nil {
		pc.Close()
		return fmt.Errorf("sim: phone %s: %w", p.cfg.Account, err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(p.log))
	if err != nil {
		pc.Close()
		ua.Close()
		return fmt.Errorf("sim: phone %s: %w", p.cfg.Account, err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(local), sipgo.WithClientLogger(p.log))
	if err != nil {
		pc.Close()
		ua.Close()
		return fmt.Errorf("sim: phone %s: %w", p.cfg.Account, err)
	}
	p.client = cli
	p.contact = sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.Account,
		Host: p.local.Addr().String(), Port: int(p.local.Port())}}
	p.outDlg = sipgo.NewDialogClientCache(cli, p.contact)
	p.inDlg = sipgo.NewDialogServerCache(cli, p.contact)
	p.report.Source = p.local

	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) { p.onInvite(ctx, req, tx) })
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.inDlg.ReadAck(req, tx) })
	srv.OnBye(p.onBye)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() {
		<-ctx.Done()
		pc.Close()
		ua.Close()
	}()
	go func() { _ = srv.ServeUDP(pc) }()
	waitServing(ctx, ua.TransportLayer(), local)
	close(p.ready)
	return nil
}

// Addr returns the phone's bound address (valid after Start).
func (p *Phone) Addr() netip.AddrPort {
	<-p.ready
	return p.local
}

// Account returns the phone's account name.
func (p *Phone) Account() string { return p.cfg.Account }

// Report returns a snapshot of what the phone did so far.
func (p *Phone) Report() PhoneReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.report
	r.RegisterCodes = cloneMap(r.RegisterCodes)
	r.CallCodes = cloneMap(r.CallCodes)
	r.Errors = append([]string(nil), r.Errors...)
	return r
}

func (p *Phone) note(f func(r *PhoneReport)) {
	p.mu.Lock()
	f(&p.report)
	p.mu.Unlock()
}

func (p *Phone) noteError(err error) {
	p.note(func(r *PhoneReport) {
		if len(r.Errors) < 20 {
			r.Errors = append(r.Errors, err.Error())
		}
	})
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

func cloneMap(m map[int]int) map[int]int {
	out := make(map[int]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
