// Package esltest is a test server that speaks FreeSWITCH's inbound Event
// Socket protocol as mod_event_socket writes it, and builders for the events
// FreeSWITCH sends, with the headers and encoding of its source. Tests of
// the Event Socket client and of the daemon in sidecar mode share it.
package esltest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server speaks mod_event_socket's inbound protocol as FreeSWITCH
// writes it (mod_event_socket.c listener_run, read_packet, parse_command,
// api_exec; mod_commands.c uuid_kill_function, hupall_api_function):
// auth/request, auth replies (and a hang-up after -ERR invalid), event
// subscriptions, api and bgapi with their replies, events in plain format
// and the disconnect notice. Tests push frames with Conn.Write.
type Server struct {
	t        testing.TB
	ln       net.Listener
	password string
	// Reject answers every connection with text/rude-rejection.
	Reject bool
	// Silent accepts and never speaks.
	Silent bool

	mu       sync.Mutex
	conns    []*Conn
	commands []string        // every command line received, in order
	channels map[string]bool // live channel UUIDs for uuid_kill
	// Accepted receives each connection after its authentication.
	Accepted chan *Conn
	// Subscribed receives each connection after an event subscription.
	Subscribed chan *Conn
}

// Close drops the connection without a disconnect notice, as a crash or a
// network failure would.
func (c *Conn) Close() error { return c.nc.Close() }

// Conn is one client connection to the Server.
type Conn struct {
	nc  net.Conn
	wmu sync.Mutex
}

// Write sends b to the client as it is: frames built with FrameEvent,
// DisconnectNotice, or a truncated frame.
func (c *Conn) Write(b string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write([]byte(b))
	return err
}

// New starts a Server on a loopback port that accepts password; opts may
// set Reject or Silent. It stops when the test ends.
func New(t testing.TB, password string, opts ...func(*Server)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, ln: ln, password: password, Accepted: make(chan *Conn, 16),
		Subscribed: make(chan *Conn, 16), channels: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
	})
	go s.accept()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AddChannel makes uuid a live channel: uuid_kill of it succeeds once.
func (s *Server) AddChannel(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channels[uuid] = true
}

func (s *Server) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &Conn{nc: nc}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		go s.serve(c)
	}
}

// Commands returns every command line received so far, in order.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *Server) serve(c *Conn) {
	defer c.nc.Close()
	if s.Silent {
		buf := make([]byte, 1024)
		for {
			if _, err := c.nc.Read(buf); err != nil {
				return
			}
		}
	}
	if s.Reject {
		body := "Access Denied, go away.\n"
		c.Write(fmt.Sprintf("Content-Type: text/rude-rejection\nContent-Length: %d\n\n%s", len(body), body))
		return
	}
	c.Write("Content-Type: auth/request\n\n")
	br := bufio.NewReader(c.nc)
	authed := false
	for {
		line, hdrs, err := readPacket(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.commands = append(s.commands, line)
		s.mu.Unlock()
		cmd, arg, _ := strings.Cut(line, " ")
		if !authed {
			if cmd == "auth" && arg == s.password {
				authed = true
				c.Write("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
				s.Accepted <- c
				continue
			}
			c.Write("Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
			return
		}
		switch cmd {
		case "event":
			format, _, _ := strings.Cut(arg, " ")
			c.Write("Content-Type: command/reply\nReply-Text: +OK event listener enabled " + format + "\n\n")
			s.Subscribed <- c
		case "api":
			if arg == "hang" {
				continue // a command FreeSWITCH never finishes
			}
			body := s.api(arg)
			c.Write(fmt.Sprintf("Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body))
		case "bgapi":
			id := hdrs["Job-UUID"]
			if id == "" {
				id = "7f4db78a-17d7-11dd-b7a0-db4edd065621"
			}
			c.Write("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + id + "\nJob-UUID: " + id + "\n\n")
			// An unrelated event overtakes the job's result, as it can
			// in FreeSWITCH (api_exec runs in its own thread).
			c.Write(FrameEvent(ChannelEvent("CHANNEL_ANSWER", "0d4d8d1c-5a36-4e0c-a9a3-3c6ad0b1e0a1")))
			c.Write(FrameEvent(BackgroundJob(id, arg, s.api(arg))))
		case "exit":
			c.Write("Content-Type: command/reply\nReply-Text: +OK bye\n\n")
			c.Write(DisconnectNotice)
			return
		default:
			c.Write("Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
		}
	}
}

// api answers the api commands the guard sends, with mod_commands.c's texts.
func (s *Server) api(arg string) string {
	name, rest, _ := strings.Cut(arg, " ")
	switch name {
	case "uuid_kill":
		s.mu.Lock()
		defer s.mu.Unlock()
		id, _, _ := strings.Cut(rest, " ")
		if !s.channels[id] {
			return "-ERR No such channel!\n"
		}
		delete(s.channels, id)
		return "+OK\n"
	case "hupall":
		f := strings.Fields(rest)
		if len(f) == 3 {
			return fmt.Sprintf("+OK hangup all channels matching [%s]=[%s] with cause: %s\n", f[1], f[2], f[0])
		}
		return "+OK hangup all channels with cause " + f[0] + "\n"
	case "status":
		return "UP 0 years, 0 days, 1 hour, 2 minutes\n"
	}
	return "-ERR " + name + " Command not found!\n"
}

// readPacket reads one command the way read_packet does: lines up to an
// empty line, "\r" ignored; the first line is the command, the rest headers.
func readPacket(br *bufio.Reader) (string, map[string]string, error) {
	var first string
	hdrs := map[string]string{}
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			if first == "" {
				continue
			}
			return first, hdrs, nil
		}
		if first == "" {
			first = l
			continue
		}
		k, v, _ := strings.Cut(l, ": ")
		hdrs[k] = v
	}
}

// DisconnectNotice is the frame mod_event_socket sends before it closes
// (listener_run, "Disconnected, goodbye.\nSee you at ClueCon! ...").
var DisconnectNotice = func() string {
	body := "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
	return fmt.Sprintf("Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s", len(body), body)
}()

// URLEncode encodes like switch_url_encode: bytes below 0x20 or above 0x7e
// and the SWITCH_URL_UNSAFE set become %XX; an existing %XX is kept.
func URLEncode(s string) string {
	const unsafe = "\r\n #%&+:;<=>?@[\\]^`{|}\""
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(c)
			continue
		}
		if c < 0x20 || c > 0x7e || strings.IndexByte(unsafe, c) >= 0 {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Hdr is one event header, in the order FreeSWITCH adds it.
type Hdr struct{ K, V string }

// PlainEvent serialises like switch_event_serialize(event, &buf, SWITCH_TRUE).
func PlainEvent(hs []Hdr, body string) string {
	var b strings.Builder
	for _, h := range hs {
		v := h.V
		if v == "" {
			v = "_undef_"
		}
		b.WriteString(h.K + ": " + URLEncode(v) + "\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\n\n%s", len(body), body)
	} else {
		b.WriteString("\n")
	}
	return b.String()
}

// FrameEvent wraps a plain event the way listener_run sends it:
// Content-Length before Content-Type.
func FrameEvent(payload string) string {
	return fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(payload), payload)
}

var seq atomic.Int64

// stamp is the Event-Date-Timestamp StdHeaders writes.
const stamp = "Event-Date-Timestamp: 1787393701123456\n"

// At returns payload (built with StdHeaders) with its Event-Date-Timestamp
// set to t, for tests whose engine judges by the event's own time.
func At(payload string, t time.Time) string {
	return strings.Replace(payload, stamp, fmt.Sprintf("Event-Date-Timestamp: %d\n", t.UnixMicro()), 1)
}

// StdHeaders are the headers every event carries (switch_event.c
// switch_event_prep_for_delivery_detailed).
func StdHeaders(name, subclass, file, function string) []Hdr {
	hs := []Hdr{
		{"Event-Name", name},
		{"Core-UUID", "bb890f9e-0aae-476d-8292-91b434eb4f73"},
		{"FreeSWITCH-Hostname", "pbx1"},
		{"FreeSWITCH-Switchname", "pbx1"},
		{"FreeSWITCH-IPv4", "203.0.113.10"},
		{"FreeSWITCH-IPv6", "::1"},
		{"Event-Date-Local", "2026-08-22 10:15:01"},
		{"Event-Date-GMT", "Sat, 22 Aug 2026 10:15:01 GMT"},
		{"Event-Date-Timestamp", "1787393701123456"},
		{"Event-Calling-File", file},
		{"Event-Calling-Function", function},
		{"Event-Calling-Line-Number", "1792"},
		{"Event-Sequence", fmt.Sprint(seq.Add(1))},
	}
	if subclass != "" {
		hs = append(hs, Hdr{"Event-Subclass", subclass})
	}
	return hs
}

// RegisterAttempt has sofia_reg.c's register_attempt headers.
func RegisterAttempt(toUser, username, ip, port, ua, result string) string {
	hs := append(StdHeaders("CUSTOM", "sofia::register_attempt", "sofia_reg.c", "sofia_reg_handle_register_token"),
		Hdr{"profile-name", "internal"}, Hdr{"from-user", toUser}, Hdr{"from-host", "203.0.113.10"},
		Hdr{"contact", "\"" + username + "\" <sip:" + username + "@" + ip + ":" + port + ">"},
		Hdr{"call-id", "a84b4c76e66710@" + ip}, Hdr{"rpid", "unknown"}, Hdr{"status", "Registered(UDP)"},
		Hdr{"expires", "3600"}, Hdr{"to-user", username}, Hdr{"to-host", "203.0.113.10"},
		Hdr{"network-ip", ip}, Hdr{"network-port", port}, Hdr{"username", username},
		Hdr{"realm", "203.0.113.10"}, Hdr{"user-agent", ua}, Hdr{"auth-result", result})
	return PlainEvent(hs, "")
}

// RegisterFailure has sofia_reg.c's register_failure headers, in order,
// profile-name twice.
func RegisterFailure(toUser, ip, port, ua, regType string) string {
	hs := append(StdHeaders("CUSTOM", "sofia::register_failure", "sofia_reg.c", "sofia_reg_handle_register_token"),
		Hdr{"profile-name", "internal"}, Hdr{"to-user", toUser}, Hdr{"to-host", "203.0.113.10"},
		Hdr{"network-ip", ip}, Hdr{"user-agent", ua}, Hdr{"profile-name", "internal"},
		Hdr{"network-port", port}, Hdr{"registration-type", regType})
	return PlainEvent(hs, "")
}

// RegisterOK has sofia_reg.c's sofia::register headers.
func RegisterOK(user, ip, port, ua string) string {
	hs := append(StdHeaders("CUSTOM", "sofia::register", "sofia_reg.c", "sofia_reg_handle_register_token"),
		Hdr{"profile-name", "internal"}, Hdr{"from-user", user}, Hdr{"from-host", "203.0.113.10"},
		Hdr{"presence-hosts", "n/a"}, Hdr{"contact", "\"" + user + "\" <sip:" + user + "@" + ip + ":" + port + ";fs_nat=yes>"},
		Hdr{"call-id", "1-2-3@" + ip}, Hdr{"rpid", "unknown"}, Hdr{"status", "Registered(UDP-NAT)"},
		Hdr{"expires", "600"}, Hdr{"to-user", user}, Hdr{"to-host", "203.0.113.10"},
		Hdr{"network-ip", ip}, Hdr{"network-port", port}, Hdr{"username", user},
		Hdr{"realm", "203.0.113.10"}, Hdr{"user-agent", ua})
	return PlainEvent(hs, "")
}

// WrongCallState has mod_sofia.c's headers, with underscores.
func WrongCallState(fromUser, ip, port string) string {
	hs := append(StdHeaders("CUSTOM", "sofia::wrong_call_state", "mod_sofia.c", "sofia_on_hangup"),
		Hdr{"from_user", fromUser}, Hdr{"network_ip", ip}, Hdr{"network_port", port})
	return PlainEvent(hs, "")
}

// ChannelEvent is shaped like the CHANNEL_HANGUP_COMPLETE captured in
// cgrates/cgrates sessionmanager/fsevent_test.go, with the sip variables
// sofia.c sets on an inbound call.
func ChannelEvent(name, uuid string) string {
	return ChannelEventFrom(name, uuid, "198.51.100.7", "1003", "0046701234567", "inbound", "Jitsi 2.5.5065 Linux")
}

// ChannelEventFrom is ChannelEvent from ip, placed by user to dest, with
// direction dir ("inbound" or "outbound") and User-Agent ua.
func ChannelEventFrom(name, uuid, ip, user, dest, dir, ua string) string {
	hs := append(StdHeaders(name, "", "switch_channel.c", "switch_channel_perform_mark_answered"),
		Hdr{"Channel-State", "CS_EXECUTE"}, Hdr{"Channel-Name", "sofia/internal/" + user + "@203.0.113.10"},
		Hdr{"Unique-ID", uuid}, Hdr{"Call-Direction", dir}, Hdr{"Answer-State", "answered"},
		Hdr{"Caller-Direction", dir}, Hdr{"Caller-Username", user}, Hdr{"Caller-Caller-ID-Number", user},
		Hdr{"Caller-Network-Addr", ip}, Hdr{"Caller-Destination-Number", dest},
		Hdr{"Caller-Context", "default"}, Hdr{"variable_sip_network_ip", ip},
		Hdr{"variable_sip_network_port", "5071"}, Hdr{"variable_sip_received_ip", ip},
		Hdr{"variable_sip_received_port", "5071"}, Hdr{"variable_sip_via_protocol", "udp"},
		Hdr{"variable_sip_authorized", "true"}, Hdr{"variable_sip_auth_username", user},
		Hdr{"variable_sip_auth_realm", "203.0.113.10"}, Hdr{"variable_sip_from_user", user},
		Hdr{"variable_sip_to_user", dest}, Hdr{"variable_toll_allow", "domestic,international,local"},
		Hdr{"variable_sofia_profile_name", "internal"}, Hdr{"variable_sip_user_agent", ua})
	if name == "CHANNEL_HANGUP_COMPLETE" {
		hs = append(hs, Hdr{"Hangup-Cause", "NORMAL_CLEARING"}, Hdr{"variable_hangup_cause", "NORMAL_CLEARING"},
			Hdr{"variable_duration", "18"}, Hdr{"variable_billsec", "5"}, Hdr{"variable_answersec", "13"},
			Hdr{"variable_sip_hangup_disposition", "send_bye"})
	}
	return PlainEvent(hs, "")
}

// BackgroundJob is api_exec's BACKGROUND_JOB event: the result is the body.
func BackgroundJob(id, cmd, result string) string {
	name, arg, _ := strings.Cut(cmd, " ")
	hs := append(StdHeaders("BACKGROUND_JOB", "", "mod_event_socket.c", "api_exec"),
		Hdr{"Job-UUID", id}, Hdr{"Job-Owner-UUID", ""}, Hdr{"Job-Command", name}, Hdr{"Job-Command-Arg", arg})
	return PlainEvent(hs, result)
}
