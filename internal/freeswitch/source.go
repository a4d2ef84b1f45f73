// Package freeswitch feeds tollguard from FreeSWITCH's inbound Event Socket
// and acts on it: a framing parser and client (Conn), the mapping from
// FreeSWITCH events to tollguard events (Mapper), and a Source that streams
// mapped events and tears calls down with uuid_kill and hupall.
//
// The wire protocol, event headers and api replies used here are those of
// FreeSWITCH's source (mod_event_socket.c, sofia_reg.c, mod_commands.c);
// each place that depends on one cites the function.
package freeswitch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/teardown"
)

// Teardown ends running calls. The sidecar implements it with ESL commands
// (*Source); the inline proxy can implement it with a BYE to both sides.
// Both methods block until the PBX or peer has answered or ctx ends, and
// never retry.
type Teardown interface {
	// KillCall ends one call, named by the ID its events carried
	// (SIP.CallID: the channel's Unique-ID for FreeSWITCH events).
	KillCall(ctx context.Context, callID string) error
	// KillSource ends every call whose signalling comes from addr.
	KillSource(ctx context.Context, addr netip.Addr) error
}

var _ Teardown = (*Source)(nil)

// ErrNotConnected is returned by the actions while no Event Socket
// connection is up.
var ErrNotConnected = errors.New("esl: not connected")

// Config configures a Source.
type Config struct {
	// Addr is the inbound Event Socket, host:port.
	Addr string
	// Password is the event socket password.
	Password string
	// Timeout bounds connecting, authenticating and each command.
	// Default 5s.
	Timeout time.Duration
	// Logger receives connection state changes. Default slog.Default().
	Logger *slog.Logger
	// Registry receives the metrics. Optional.
	Registry prometheus.Registerer
}

// Source streams FreeSWITCH events as tollguard events and carries out
// teardowns on the same connection. Stream follows the event source
// contract: it returns when the connection fails and never reconnects
// itself; a supervisor restarts it.
type Source struct {
	cfg    Config
	log    *slog.Logger
	mapper *Mapper
	m      *metrics

	mu   sync.Mutex
	conn *Conn
}

// New returns a Source for cfg.
func New(cfg Config) (*Source, error) {
	if cfg.Addr == "" {
		return nil, errors.New("freeswitch: no event socket address")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Source{cfg: cfg, log: cfg.Logger.With("component", "freeswitch"), mapper: NewMapper()}
	m, err := newMetrics(cfg.Registry, s)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Stream connects, authenticates, subscribes to Subscription and sends each
// mapped event to out, in FreeSWITCH's order, until the connection fails or
// ctx ends. It always returns a non-nil error: ctx.Err() when cancelled.
// Events read before a failure are delivered before Stream returns.
func (s *Source) Stream(ctx context.Context, out chan<- event.Event) error {
	c, err := Dial(ctx, s.cfg.Addr, s.cfg.Password, DialOptions{Timeout: s.cfg.Timeout, OnDrop: s.m.drop})
	if err != nil {
		return err
	}
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err = c.Subscribe(sctx, Subscription)
	cancel()
	if err != nil {
		return fmt.Errorf("esl: subscribing: %w", err)
	}
	s.setConn(c)
	defer s.setConn(nil)
	s.log.Info("event socket connected", "addr", s.cfg.Addr)
	deliver := func(e *Event) error {
		tg, why := s.mapper.Map(e)
		if tg == nil {
			if why != DropNone && why != DropIgnored {
				s.m.drop(why)
			}
			return nil
		}
		s.m.events.WithLabelValues(tg.Kind().String()).Inc()
		select {
		case out <- tg:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-c.Events():
			if err := deliver(e); err != nil {
				return err
			}
		case <-c.Done():
			for {
				select {
				case e := <-c.Events():
					if err := deliver(e); err != nil {
						return err
					}
					continue
				default:
				}
				break
			}
			s.log.Warn("event socket lost", "addr", s.cfg.Addr, "err", c.Err())
			return c.Err()
		}
	}
}

func (s *Source) setConn(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if s.conn != nil && c == nil {
		s.m.addConnected(now.Sub(s.m.since))
	}
	if c != nil {
		s.m.since = now
		s.m.connects.Inc()
	}
	s.conn = c
}

// Connected reports whether the Event Socket connection is up and
// subscribed (tollguard_esl_connected).
func (s *Source) Connected() bool { return s.current() != nil }

func (s *Source) current() *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// API runs one api command on the current connection.
func (s *Source) API(ctx context.Context, cmd string) (string, error) {
	c := s.current()
	if c == nil {
		return "", ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	r, err := c.API(ctx, cmd)
	if err != nil {
		s.m.commands.WithLabelValues("error").Inc()
		return r, err
	}
	s.m.commands.WithLabelValues("ok").Inc()
	return r, nil
}

// KillCall runs "uuid_kill UUID" (mod_commands.c uuid_kill_function; the
// cause defaults to NORMAL_CLEARING; the reply is "+OK" or "-ERR No such
// channel!").
func (s *Source) KillCall(ctx context.Context, callID string) error {
	if !validUUID(callID) {
		return fmt.Errorf("esl: uuid_kill: not a channel uuid: %q", capText(callID))
	}
	_, err := s.API(ctx, "uuid_kill "+callID)
	return err
}

// KillSource runs "hupall NORMAL_CLEARING sip_network_ip ADDR", which hangs
// up every channel whose sip_network_ip variable equals ADDR exactly
// (mod_commands.c hupall_api_function: argv[0] cause, argv[1] variable,
// argv[2] value; switch_core_session_hupall_matching_var). Without a value
// hupall hangs up every call on the box, so an invalid addr is refused here
// before anything is sent.
func (s *Source) KillSource(ctx context.Context, addr netip.Addr) error {
	if !addr.IsValid() {
		return errors.New("esl: hupall: invalid address")
	}
	_, err := s.API(ctx, "hupall NORMAL_CLEARING sip_network_ip "+addr.Unmap().String())
	return err
}

// validUUID accepts what FreeSWITCH uses as a channel UUID: hex digits and
// dashes, at most 64 bytes (SWITCH_UUID_FORMATTED_LENGTH is 36; custom
// origination_uuid values may differ, but never contain spaces).
func validUUID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

var _ teardown.Teardown = (*Source)(nil)

// HangupCall implements teardown.Teardown with KillCall (uuid_kill).
func (s *Source) HangupCall(ctx context.Context, id string) error {
	return s.KillCall(ctx, id)
}

// HangupSource implements teardown.Teardown with KillSource (hupall on
// sip_network_ip). FreeSWITCH does not say how many channels it hung up,
// so the count is -1.
func (s *Source) HangupSource(ctx context.Context, addr netip.Addr) (int, error) {
	return -1, s.KillSource(ctx, addr)
}

// HangupAccount implements teardown.Teardown with "hupall NORMAL_CLEARING
// sip_auth_username ACCOUNT": every channel authenticated as account
// (mod_commands.c hupall_api_function, as KillSource). The account must be
// one word of printable ASCII: hupall splits its arguments on spaces, and
// an empty value would hang up every call.
func (s *Source) HangupAccount(ctx context.Context, account string) (int, error) {
	if !validAccount(account) {
		return 0, fmt.Errorf("esl: hupall: not an account name: %q", capText(account))
	}
	_, err := s.API(ctx, "hupall NORMAL_CLEARING sip_auth_username "+account)
	return -1, err
}

// validAccount accepts a SIP user part without spaces or controls, at most
// 128 bytes.
func validAccount(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
