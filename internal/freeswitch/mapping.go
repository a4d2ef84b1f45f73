package freeswitch

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/event"
)

// Subscription is the event list the Source asks for. CUSTOM comes last
// because mod_event_socket reads every token after it as a subclass
// (parse_command); BACKGROUND_JOB carries bgapi results.
const Subscription = "CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB " +
	"CUSTOM sofia::register_failure sofia::register_attempt sofia::register sofia::wrong_call_state"

// Drop reasons reported by Mapper.Map.
const (
	DropNone     = ""
	DropNoSource = "no_source"     // the event names no usable peer address
	DropOutbound = "outbound_leg"  // a leg FreeSWITCH placed itself (no event type carries direction)
	DropIgnored  = "ignored_event" // an event the guard does not use
)

// attemptMemory bounds how many register_attempt usernames the Mapper
// keeps while it waits for the matching register_failure.
const (
	attemptMemory = 4096
	attemptMaxAge = 5 * time.Second
)

type attemptKey struct {
	ip   string
	port string
}

type attempt struct {
	username string
	at       time.Time
}

// Mapper turns FreeSWITCH events into tollguard events. It is not safe for
// concurrent use: one Mapper belongs to one event stream.
//
// sofia::register_failure has no digest username, and its to-user is the
// To-header user, which for an INVITE is the dialled number, not the
// account (sofia_reg.c sofia_reg_handle_register_token). FreeSWITCH fires
// sofia::register_attempt, which has the digest username, immediately
// before register_failure in that same function for the same request, so
// the Mapper remembers the last attempt per source address and port, in
// bounded memory, and takes the account from it.
type Mapper struct {
	// Listener is written to every event's Meta.Listener. Default "esl".
	Listener string
	// Now is used when an event has no Event-Date-Timestamp.
	Now func() time.Time

	attempts map[attemptKey]attempt
	order    []attemptKey // ring of keys in insertion order
	next     int
}

// NewMapper returns a Mapper.
func NewMapper() *Mapper {
	return &Mapper{Listener: "esl", Now: time.Now, attempts: make(map[attemptKey]attempt, 64)}
}

// Map converts ev. It returns the tollguard event, or nil and the reason it
// was not converted.
func (m *Mapper) Map(ev *Event) (event.Event, string) {
	switch ev.Name() {
	case "CUSTOM":
		switch ev.Subclass() {
		case "sofia::register_attempt":
			m.rememberAttempt(ev)
			return nil, DropNone
		case "sofia::register_failure":
			return m.registerFailure(ev)
		case "sofia::register":
			return m.register(ev)
		case "sofia::wrong_call_state":
			return m.wrongCallState(ev)
		}
	case "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE":
		return m.channel(ev)
	}
	return nil, DropIgnored
}

func (m *Mapper) meta(ev *Event, ip, port string) (event.Meta, bool) {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return event.Meta{}, false
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	// FreeSWITCH's register events name no transport; a channel event's
	// sip_via_protocol replaces this below. Unknown counts as UDP: the
	// address is not proven.
	meta := event.Meta{Source: netip.AddrPortFrom(addr.Unmap(), uint16(p)), Transport: event.TransportUnknown, Listener: m.Listener}
	// Event-Date-Timestamp is microseconds since the epoch
	// (switch_event_prep_for_delivery_detailed).
	if us, err := strconv.ParseInt(ev.Get("Event-Date-Timestamp"), 10, 64); err == nil && us > 0 {
		meta.Time = time.UnixMicro(us)
	} else {
		meta.Time = m.Now()
	}
	return meta, true
}

// rememberAttempt keeps the digest username of a register_attempt
// (sofia_reg.c sofia_reg_handle_register_token: "username" is
// sip_auth_username, or "unknown" when the credentials did not parse).
func (m *Mapper) rememberAttempt(ev *Event) {
	u := ev.Get("username")
	if u == "" || u == "unknown" {
		return
	}
	k := attemptKey{ip: ev.Get("network-ip"), port: ev.Get("network-port")}
	if _, ok := m.attempts[k]; !ok {
		if len(m.order) < attemptMemory {
			m.order = append(m.order, k)
		} else {
			delete(m.attempts, m.order[m.next])
			m.order[m.next] = k
			m.next = (m.next + 1) % attemptMemory
		}
	}
	m.attempts[k] = attempt{username: u, at: m.Now()}
}

func (m *Mapper) takeAttempt(ip, port string) string {
	k := attemptKey{ip: ip, port: port}
	a, ok := m.attempts[k]
	if !ok {
		return ""
	}
	// The key stays in the ring until overwritten; only the value goes.
	delete(m.attempts, k)
	if m.Now().Sub(a.at) > attemptMaxAge {
		return ""
	}
	return a.username
}

// registerFailure maps sofia::register_failure, fired only for
// AUTH_FORBIDDEN (a 403: wrong password, unknown user, ACL or filter
// refusal), never for a challenge or a stale nonce (sofia_reg.c
// sofia_reg_handle_register_token). Headers: profile-name, to-user,
// to-host, network-ip, user-agent, network-port, registration-type.
func (m *Mapper) registerFailure(ev *Event) (event.Event, string) {
	ip, port := ev.Get("network-ip"), ev.Get("network-port")
	meta, ok := m.meta(ev, ip, port)
	if !ok {
		return nil, DropNoSource
	}
	method := "REGISTER"
	if ev.Get("registration-type") == "INVITE" {
		method = "INVITE"
	}
	user := m.takeAttempt(ip, port)
	sip := event.SIP{
		Method:         method,
		ToUser:         ev.Get("to-user"),
		UserAgent:      ev.Get("user-agent"),
		HasCredentials: true,
		AuthUser:       user,
	}
	account := user
	if account == "" && method == "REGISTER" {
		// For REGISTER the To user is the account (with
		// inbound-reg-force-matching-username it must equal the digest
		// username).
		account = sip.ToUser
	}
	if method == "INVITE" {
		sip.RURIUser = sip.ToUser
	}
	return &event.AuthFailure{Meta: meta, SIP: sip, Account: account, Code: 403}, DropNone
}

// register maps sofia::register, a successful registration (sofia_reg.c
// sofia_reg_handle_register_token). There the header from-user holds the
// To-header user (the address of record) and to-user the From user.
func (m *Mapper) register(ev *Event) (event.Event, string) {
	meta, ok := m.meta(ev, ev.Get("network-ip"), ev.Get("network-port"))
	if !ok {
		return nil, DropNoSource
	}
	sip := event.SIP{
		Method:    "REGISTER",
		CallID:    ev.Get("call-id"),
		ToUser:    ev.Get("from-user"),
		FromUser:  ev.Get("to-user"),
		UserAgent: ev.Get("user-agent"),
	}
	account := ev.Get("username")
	if account == "" || account == "unknown" {
		account = sip.ToUser
	} else {
		sip.AuthUser = account
		sip.HasCredentials = true
	}
	exp, _ := strconv.Atoi(ev.Get("expires"))
	return &event.Register{Meta: meta, SIP: sip, Account: account, Expires: exp}, DropNone
}

// wrongCallState maps sofia::wrong_call_state (mod_sofia.c, headers
// from_user, network_ip, network_port with underscores). FreeSWITCH fires
// it when an inbound channel is hung up still in CS_NEW: an INVITE was
// challenged and the caller never answered the challenge, abandoned after
// about ten seconds (switch_core_state_machine.c, "Abandoned"). There is no
// "abandoned challenge" event type; the closest shape is the challenge
// itself, a 407 to an INVITE without credentials, which the engine's
// enumeration rule tracks as pending until the source answers it.
func (m *Mapper) wrongCallState(ev *Event) (event.Event, string) {
	meta, ok := m.meta(ev, ev.Get("network_ip"), ev.Get("network_port"))
	if !ok {
		return nil, DropNoSource
	}
	sip := event.SIP{Method: "INVITE", FromUser: ev.Get("from_user")}
	return &event.Response{Meta: meta, SIP: sip, Code: 407}, DropNone
}

// channel maps the three channel events of an inbound leg. CHANNEL_CREATE
// fires at CS_INIT, after authentication passed, so every mapped call was
// let in. The call's ID is the channel's Unique-ID, which uuid_kill takes.
func (m *Mapper) channel(ev *Event) (event.Event, string) {
	if d := ev.Get("Call-Direction"); d != "" && d != "inbound" {
		return nil, DropOutbound
	}
	ip := ev.Get("Caller-Network-Addr")
	if ip == "" {
		ip = ev.Get("variable_sip_received_ip")
	}
	port := ev.Get("variable_sip_received_port")
	if port == "" {
		port = ev.Get("variable_sip_network_port")
	}
	meta, ok := m.meta(ev, ip, port)
	if !ok {
		return nil, DropNoSource
	}
	if t := ev.Get("variable_sip_via_protocol"); t != "" {
		meta.Transport = event.Transport(strings.ToLower(t))
	}
	sip := event.SIP{
		Method:    "INVITE",
		CallID:    ev.Get("Unique-ID"),
		FromUser:  ev.Get("variable_sip_from_user"),
		ToUser:    ev.Get("variable_sip_to_user"),
		RURIUser:  ev.Get("Caller-Destination-Number"),
		UserAgent: ev.Get("variable_sip_user_agent"),
		AuthUser:  ev.Get("variable_sip_auth_username"),
	}
	if sip.FromUser == "" {
		sip.FromUser = ev.Get("Caller-Caller-ID-Number")
	}
	sip.HasCredentials = sip.AuthUser != ""
	account, dest := sip.Account(), sip.RURIUser
	switch ev.Name() {
	case "CHANNEL_CREATE":
		return &event.CallAttempt{Meta: meta, SIP: sip, Account: account, Destination: dest}, DropNone
	case "CHANNEL_ANSWER":
		return &event.CallAnswered{Meta: meta, SIP: sip, Account: account, Destination: dest}, DropNone
	}
	end := &event.CallEnded{Meta: meta, SIP: sip, Account: account, Destination: dest,
		Duration: seconds(ev.Get("variable_duration")),
		Billsec:  seconds(ev.Get("variable_billsec")),
		Cause:    endCause(ev.Get("variable_sip_hangup_disposition"), ev.Get("Hangup-Cause")),
	}
	if end.Billsec == 0 {
		end.Code, _ = strconv.Atoi(ev.Get("variable_sip_term_status"))
	}
	return end, DropNone
}

func seconds(s string) time.Duration {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// endCause maps sip_hangup_disposition (recv_bye, send_bye, recv_cancel,
// send_cancel, send_refuse, recv_refuse) and the hangup cause onto
// CallEnded.Cause.
func endCause(disposition, cause string) string {
	switch {
	case strings.HasSuffix(disposition, "_bye"):
		return "bye"
	case strings.HasSuffix(disposition, "_cancel"), cause == "ORIGINATOR_CANCEL":
		return "cancel"
	case cause == "NO_ANSWER", cause == "ALLOTTED_TIMEOUT", cause == "RECOVERY_ON_TIMER_EXPIRE":
		return "timeout"
	}
	return "failed"
}
