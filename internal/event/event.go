// Package event defines the typed events that flow from sources (the inline
// proxy's tap, FreeSWITCH, log files, replays) into the engine and the store.
//
// Events are plain values. A source fills one, hands a pointer to the engine,
// and must not change it afterwards: the engine and the store may keep it.
package event

import (
	"net/netip"
	"time"
)

// Kind names an event type. Its string form is stable: it is written to the
// store, to JSON replay files and shown by `tollguard events --kind`.
type Kind uint8

// The event kinds. New kinds are appended; the numbers are not stored.
const (
	KindRequest      Kind = iota + 1 // a SIP request arrived (before it is forwarded)
	KindResponse                     // a request got its final response
	KindAuthFailure                  // credentials were presented and refused, or the account is unknown
	KindRegister                     // a registration succeeded
	KindCallAttempt                  // an initial INVITE
	KindCallAnswered                 // an INVITE got a 2xx
	KindCallEnded                    // a call ended (BYE, or a failed/cancelled INVITE)
	KindBan                          // a ban was placed
	KindUnban                        // a ban was lifted
	KindVerdict                      // the guard rejected or dropped a request
	KindAdmin                        // an operator acted through the admin API
	KindCallRinging                  // an initial INVITE got a provisional other than 100
)

var kindNames = [...]string{
	KindRequest:      "request",
	KindResponse:     "response",
	KindAuthFailure:  "auth_failure",
	KindRegister:     "register",
	KindCallAttempt:  "call_attempt",
	KindCallAnswered: "call_answered",
	KindCallEnded:    "call_ended",
	KindBan:          "ban",
	KindUnban:        "unban",
	KindVerdict:      "verdict",
	KindAdmin:        "admin",
	KindCallRinging:  "call_ringing",
}

// String returns the stable name of k, or "unknown".
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind returns the Kind named s, or false.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n != "" && n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// Kinds lists every kind in order.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kindNames)-1)
	for i := 1; i < len(kindNames); i++ {
		out = append(out, Kind(i))
	}
	return out
}

// Event is implemented by every event type of this package.
type Event interface {
	// Kind reports the event's kind.
	Kind() Kind
	// Base returns the fields every event shares. It never returns nil.
	Base() *Meta
}

// Transport is the SIP transport a message arrived on, in lower case: "udp",
// "tcp", "tls", "ws", "wss"; TransportUnknown when the reporting source does
// not say; empty in replays.
type Transport string

// TransportUnknown marks an event whose source (a PBX's event or log line)
// does not say which transport the message came on. It counts as UDP: the
// source address is not proven (DESIGN key decision 9).
const TransportUnknown Transport = "unknown"

// Proven reports whether a message that came on t proves its source
// address: a completed TCP/TLS/WebSocket handshake does, a UDP datagram
// (or a transport nobody reported) does not. Replays without a transport
// count as proven.
func (t Transport) Proven() bool { return t != "udp" && t != TransportUnknown }

// Meta holds the fields every event carries.
type Meta struct {
	// Time is when the guard saw the event.
	Time time.Time `json:"time"`
	// Source is the peer's address as seen by the guard (for PBX events, the
	// address the PBX reports for the peer). Always normalised with Unmap.
	Source netip.AddrPort `json:"source"`
	// Transport is the transport the message came on.
	Transport Transport `json:"transport,omitempty"`
	// Listener names the listener ("udp://0.0.0.0:5060") or source ("esl").
	Listener string `json:"listener,omitempty"`
}

// SIP holds what the tap extracts from a SIP request. Strings are copied out of
// the message and are attacker-controlled: quote them when logging.
type SIP struct {
	Method    string `json:"method"`
	CallID    string `json:"call_id,omitempty"`
	FromUser  string `json:"from_user,omitempty"`
	FromName  string `json:"from_name,omitempty"` // display name of From
	ToUser    string `json:"to_user,omitempty"`
	RURIUser  string `json:"ruri_user,omitempty"` // user part of the Request-URI
	UserAgent string `json:"user_agent,omitempty"`
	// HasCredentials is true when the request carried an Authorization or
	// Proxy-Authorization header.
	HasCredentials bool `json:"has_credentials,omitempty"`
	// AuthUser is the digest username of those credentials.
	AuthUser string `json:"auth_user,omitempty"`
	// Instance is the Contact's +sip.instance (RFC 5626), if any.
	Instance string `json:"instance,omitempty"`
	// Path is the Via chain, top first, as "transport host:port" hops.
	Path []string `json:"path,omitempty"`
	// Token is the call token header's value of an INVITE (see
	// call_tokens.header), capped; never stored.
	Token string `json:"-"`
	// SDP is an initial INVITE's body when it is SDP, at most 64 KiB; it
	// shares the message's memory and is never stored.
	SDP []byte `json:"-"`
}

// Account returns the account the request speaks for: the digest username when
// credentials are present, otherwise the From user (REGISTER: the To user).
func (s *SIP) Account() string {
	if s.AuthUser != "" {
		return s.AuthUser
	}
	if s.Method == "REGISTER" && s.ToUser != "" {
		return s.ToUser
	}
	return s.FromUser
}

// Request is a SIP request as it arrived, before it is forwarded.
type Request struct {
	Meta
	SIP
}

// Response is a request together with its final response.
type Response struct {
	Meta
	SIP
	// Code is the final response's status code.
	Code int `json:"code"`
	// Stale is true when a 401/407 challenge carried stale=true: the nonce
	// expired, the credentials were not wrong (RFC 7616 §3.3).
	Stale bool `json:"stale,omitempty"`
	// Expires is the registration lifetime a REGISTER 2xx granted, in
	// seconds (RFC 3261 §10.3 step 8); zero for other requests and for
	// unregistrations.
	Expires int `json:"expires,omitempty"`
}

// AuthFailure is a real authentication failure: a request that carried
// credentials and was refused with 401/403/407 (not stale), or a REGISTER for
// an unknown account (403/404). Challenges to requests without credentials are
// not failures (DESIGN key decision 2).
type AuthFailure struct {
	Meta
	SIP
	Account string `json:"account"`
	Code    int    `json:"code"`
	// Stale is true when the refusal was a stale-nonce challenge (RFC 7616
	// §3.3). Sources should not emit such failures; consumers ignore them.
	Stale bool `json:"stale,omitempty"`
}

// Register is a successful registration of Account.
type Register struct {
	Meta
	SIP
	Account string `json:"account"`
	Expires int    `json:"expires,omitempty"`
}

// CallAttempt is an initial INVITE from Account to Destination.
type CallAttempt struct {
	Meta
	SIP
	Account     string `json:"account"`
	Destination string `json:"destination"`
}

// CallAnswered is an INVITE that got a 2xx.
type CallAnswered struct {
	Meta
	SIP
	Account     string `json:"account"`
	Destination string `json:"destination"`
}

// CallRinging is an initial INVITE that got its first provisional response
// other than 100 (180, 183…): the PBX took the call past authentication.
// Call rules count the call from here; the store does not keep it (the
// call's answer or end follows).
type CallRinging struct {
	Meta
	SIP
	Account     string `json:"account"`
	Destination string `json:"destination"`
	Code        int    `json:"code"`
}

// CallEnded is the end of a call: Duration from the INVITE, Billsec from the
// answer (zero when never answered).
type CallEnded struct {
	Meta
	SIP
	Account     string        `json:"account"`
	Destination string        `json:"destination"`
	Code        int           `json:"code,omitempty"` // final INVITE code when not answered
	Duration    time.Duration `json:"duration"`
	Billsec     time.Duration `json:"billsec"`
	Cause       string        `json:"cause,omitempty"` // "bye", "cancel", "failed", "timeout"
}

// Ban records a ban placed by a rule or by an operator.
type Ban struct {
	Meta
	Scope   string    `json:"scope"` // "ip", "ip_account", "account", "prefix"
	Value   string    `json:"value"`
	Account string    `json:"account,omitempty"`
	Rule    string    `json:"rule"`
	Reason  string    `json:"reason,omitempty"`
	Until   time.Time `json:"until"`
	Actor   string    `json:"actor,omitempty"` // "engine" or the admin identity
}

// Unban records a ban lifted by an operator or by expiry.
type Unban struct {
	Meta
	Scope   string `json:"scope"`
	Value   string `json:"value"`
	Account string `json:"account,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Actor   string `json:"actor,omitempty"`
}

// Verdict records that the guard rejected or dropped a request, or let it
// through flagged by a rule (Action "pass": a toll-fraud probe, a request of
// an enumeration sweep).
type Verdict struct {
	Meta
	SIP
	Action string `json:"action"` // "drop", "reject" or "pass"
	Code   int    `json:"code,omitempty"`
	Rule   string `json:"rule"`
	Reason string `json:"reason,omitempty"`
	// Policy, Mode, Counters and Loss are set for call policy verdicts:
	// the call rule, enforce/warn/shadow, the counter values and the
	// estimated cost of the call.
	Policy   string `json:"policy,omitempty"`
	Mode     string `json:"mode,omitempty"`
	Counters string `json:"counters,omitempty"`
	Loss     string `json:"loss,omitempty"`
}

// Admin records an operator action through the admin API.
type Admin struct {
	Meta
	Actor  string `json:"actor"`
	Action string `json:"action"` // "ban", "unban", "unmask", "lockdown", ...
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Kind implements Event.
func (*Request) Kind() Kind      { return KindRequest }
func (*Response) Kind() Kind     { return KindResponse }
func (*AuthFailure) Kind() Kind  { return KindAuthFailure }
func (*Register) Kind() Kind     { return KindRegister }
func (*CallAttempt) Kind() Kind  { return KindCallAttempt }
func (*CallAnswered) Kind() Kind { return KindCallAnswered }
func (*CallEnded) Kind() Kind    { return KindCallEnded }
func (*CallRinging) Kind() Kind  { return KindCallRinging }
func (*Ban) Kind() Kind          { return KindBan }
func (*Unban) Kind() Kind        { return KindUnban }
func (*Verdict) Kind() Kind      { return KindVerdict }
func (*Admin) Kind() Kind        { return KindAdmin }

// Base implements Event.
func (m *Meta) Base() *Meta { return m }

var (
	_ Event = (*Request)(nil)
	_ Event = (*Response)(nil)
	_ Event = (*AuthFailure)(nil)
	_ Event = (*Register)(nil)
	_ Event = (*CallAttempt)(nil)
	_ Event = (*CallAnswered)(nil)
	_ Event = (*CallEnded)(nil)
	_ Event = (*CallRinging)(nil)
	_ Event = (*Ban)(nil)
	_ Event = (*Unban)(nil)
	_ Event = (*Verdict)(nil)
	_ Event = (*Admin)(nil)
)
