package freeswitch

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
)

// testServer speaks mod_event_socket's inbound protocol as FreeSWITCH
// writes it (mod_event_socket.c listener_run, read_packet, parse_command,
// api_exec; mod_commands.c uuid_kill_function, hupall_api_function):
// auth/request, auth replies (and a hang-up after -ERR invalid), event
// subscriptions, api and bgapi with their replies, events in plain format
// and the disconnect notice. Tests push frames with send.
type testServer struct {
	t        *testing.T
	ln       net.Listener
	password string
	reject   bool // answer every connection with text/rude-rejection
	silent   bool // accept and never speak

	mu         sync.Mutex
	conns      []*serverConn
	commands   []string         // every command line received, in order
	accepted   chan *serverConn // after auth
	subscribed chan *serverConn // after an event subscription
	channels   map[string]bool  // live channel UUIDs for uuid_kill
}

type serverConn struct {
	nc  net.Conn
	wmu sync.Mutex
}

func (c *serverConn) write(b string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write([]byte(b))
	return err
}

func newTestServer(t *testing.T, password string, opts ...func(*testServer)) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, ln: ln, password: password, accepted: make(chan *serverConn, 16),
		subscribed: make(chan *serverConn, 16), channels: map[string]bool{}}
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

func (s *testServer) addr() string { return s.ln.Addr().String() }

func (s *testServer) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := &serverConn{nc: nc}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *testServer) cmds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func (s *testServer) serve(c *serverConn) {
	defer c.nc.Close()
	if s.silent {
		buf := make([]byte, 1024)
		for {
			if _, err := c.nc.Read(buf); err != nil {
				return
			}
		}
	}
	if s.reject {
		body := "Access Denied, go away.\n"
		c.write(fmt.Sprintf("Content-Type: text/rude-rejection\nContent-Length: %d\n\n%s", len(body), body))
		return
	}
	c.write("Content-Type: auth/request\n\n")
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
				c.write("Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
				s.accepted <- c
				continue
			}
			c.write("Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
			return
		}
		switch cmd {
		case "event":
			format, _, _ := strings.Cut(arg, " ")
			c.write("Content-Type: command/reply\nReply-Text: +OK event listener enabled " + format + "\n\n")
			s.subscribed <- c
		case "api":
			if arg == "hang" {
				continue // a command FreeSWITCH never finishes
			}
			body := s.api(arg)
			c.write(fmt.Sprintf("Content-Type: api/response\nContent-Length: %d\n\n%s", len(body), body))
		case "bgapi":
			id := hdrs["Job-UUID"]
			if id == "" {
				id = "7f4db78a-17d7-11dd-b7a0-db4edd065621"
			}
			c.write("Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + id + "\nJob-UUID: " + id + "\n\n")
			// An unrelated event overtakes the job's result, as it can
			// in FreeSWITCH (api_exec runs in its own thread).
			c.write(frameEvent(channelEvent("CHANNEL_ANSWER", "0d4d8d1c-5a36-4e0c-a9a3-3c6ad0b1e0a1")))
			c.write(frameEvent(backgroundJob(id, arg, s.api(arg))))
		case "exit":
			c.write("Content-Type: command/reply\nReply-Text: +OK bye\n\n")
			c.write(disconnectNotice)
			return
		default:
			c.write("Content-Type: command/reply\nReply-Text: -ERR command not found\n\n")
		}
	}
}

// api answers the api commands the guard sends, with mod_commands.c's texts.
func (s *testServer) api(arg string) string {
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

// disconnectNotice is the frame mod_event_socket sends before it closes
// (listener_run, "Disconnected, goodbye.\nSee you at ClueCon! ...").
var disconnectNotice = func() string {
	body := "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
	return fmt.Sprintf("Content-Type: text/disconnect-notice\nContent-Length: %d\n\n%s", len(body), body)
}()

// urlEncode encodes like switch_url_encode: bytes below 0x20 or above 0x7e
// and the SWITCH_URL_UNSAFE set become %XX; an existing %XX is kept.
func urlEncode(s string) string {
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

func isHex(c byte) bool { _, ok := unhex(c); return ok }

// hdr is one event header, in the order FreeSWITCH adds it.
type hdr struct{ k, v string }

// plainEvent serialises like switch_event_serialize(event, &buf, SWITCH_TRUE).
func plainEvent(hs []hdr, body string) string {
	var b strings.Builder
	for _, h := range hs {
		v := h.v
		if v == "" {
			v = "_undef_"
		}
		b.WriteString(h.k + ": " + urlEncode(v) + "\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\n\n%s", len(body), body)
	} else {
		b.WriteString("\n")
	}
	return b.String()
}

// frameEvent wraps a plain event the way listener_run sends it:
// Content-Length before Content-Type.
func frameEvent(payload string) string {
	return fmt.Sprintf("Content-Length: %d\nContent-Type: text/event-plain\n\n%s", len(payload), payload)
}

var seq int

// stdHeaders are the headers every event carries (switch_event.c
// switch_event_prep_for_delivery_detailed).
func stdHeaders(name, subclass, file, function string) []hdr {
	seq++
	hs := []hdr{
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
		{"Event-Sequence", fmt.Sprint(seq)},
	}
	if subclass != "" {
		hs = append(hs, hdr{"Event-Subclass", subclass})
	}
	return hs
}

// registerAttempt has sofia_reg.c's register_attempt headers.
func registerAttempt(toUser, username, ip, port, ua, result string) string {
	hs := append(stdHeaders("CUSTOM", "sofia::register_attempt", "sofia_reg.c", "sofia_reg_handle_register_token"),
		hdr{"profile-name", "internal"}, hdr{"from-user", toUser}, hdr{"from-host", "203.0.113.10"},
		hdr{"contact", "\"" + username + "\" <sip:" + username + "@" + ip + ":" + port + ">"},
		hdr{"call-id", "a84b4c76e66710@" + ip}, hdr{"rpid", "unknown"}, hdr{"status", "Registered(UDP)"},
		hdr{"expires", "3600"}, hdr{"to-user", username}, hdr{"to-host", "203.0.113.10"},
		hdr{"network-ip", ip}, hdr{"network-port", port}, hdr{"username", username},
		hdr{"realm", "203.0.113.10"}, hdr{"user-agent", ua}, hdr{"auth-result", result})
	return plainEvent(hs, "")
}

// registerFailure has sofia_reg.c's register_failure headers, in order,
// profile-name twice.
func registerFailure(toUser, ip, port, ua, regType string) string {
	hs := append(stdHeaders("CUSTOM", "sofia::register_failure", "sofia_reg.c", "sofia_reg_handle_register_token"),
		hdr{"profile-name", "internal"}, hdr{"to-user", toUser}, hdr{"to-host", "203.0.113.10"},
		hdr{"network-ip", ip}, hdr{"user-agent", ua}, hdr{"profile-name", "internal"},
		hdr{"network-port", port}, hdr{"registration-type", regType})
	return plainEvent(hs, "")
}

// registerOK has sofia_reg.c's sofia::register headers.
func registerOK(user, ip, port, ua string) string {
	hs := append(stdHeaders("CUSTOM", "sofia::register", "sofia_reg.c", "sofia_reg_handle_register_token"),
		hdr{"profile-name", "internal"}, hdr{"from-user", user}, hdr{"from-host", "203.0.113.10"},
		hdr{"presence-hosts", "n/a"}, hdr{"contact", "\"" + user + "\" <sip:" + user + "@" + ip + ":" + port + ";fs_nat=yes>"},
		hdr{"call-id", "1-2-3@" + ip}, hdr{"rpid", "unknown"}, hdr{"status", "Registered(UDP-NAT)"},
		hdr{"expires", "600"}, hdr{"to-user", user}, hdr{"to-host", "203.0.113.10"},
		hdr{"network-ip", ip}, hdr{"network-port", port}, hdr{"username", user},
		hdr{"realm", "203.0.113.10"}, hdr{"user-agent", ua})
	return plainEvent(hs, "")
}

// wrongCallState has mod_sofia.c's headers, with underscores.
func wrongCallState(fromUser, ip, port string) string {
	hs := append(stdHeaders("CUSTOM", "sofia::wrong_call_state", "mod_sofia.c", "sofia_on_hangup"),
		hdr{"from_user", fromUser}, hdr{"network_ip", ip}, hdr{"network_port", port})
	return plainEvent(hs, "")
}

// channelEvent is shaped like the CHANNEL_HANGUP_COMPLETE captured in
// cgrates/cgrates sessionmanager/fsevent_test.go, with the sip variables
// sofia.c sets on an inbound call.
func channelEvent(name, uuid string) string {
	return channelEventFrom(name, uuid, "198.51.100.7", "1003", "0046701234567", "inbound", "Jitsi 2.5.5065 Linux")
}

func channelEventFrom(name, uuid, ip, user, dest, dir, ua string) string {
	hs := append(stdHeaders(name, "", "switch_channel.c", "switch_channel_perform_mark_answered"),
		hdr{"Channel-State", "CS_EXECUTE"}, hdr{"Channel-Name", "sofia/internal/" + user + "@203.0.113.10"},
		hdr{"Unique-ID", uuid}, hdr{"Call-Direction", dir}, hdr{"Answer-State", "answered"},
		hdr{"Caller-Direction", dir}, hdr{"Caller-Username", user}, hdr{"Caller-Caller-ID-Number", user},
		hdr{"Caller-Network-Addr", ip}, hdr{"Caller-Destination-Number", dest},
		hdr{"Caller-Context", "default"}, hdr{"variable_sip_network_ip", ip},
		hdr{"variable_sip_network_port", "5071"}, hdr{"variable_sip_received_ip", ip},
		hdr{"variable_sip_received_port", "5071"}, hdr{"variable_sip_via_protocol", "udp"},
		hdr{"variable_sip_authorized", "true"}, hdr{"variable_sip_auth_username", user},
		hdr{"variable_sip_auth_realm", "203.0.113.10"}, hdr{"variable_sip_from_user", user},
		hdr{"variable_sip_to_user", dest}, hdr{"variable_toll_allow", "domestic,international,local"},
		hdr{"variable_sofia_profile_name", "internal"}, hdr{"variable_sip_user_agent", ua})
	if name == "CHANNEL_HANGUP_COMPLETE" {
		hs = append(hs, hdr{"Hangup-Cause", "NORMAL_CLEARING"}, hdr{"variable_hangup_cause", "NORMAL_CLEARING"},
			hdr{"variable_duration", "18"}, hdr{"variable_billsec", "5"}, hdr{"variable_answersec", "13"},
			hdr{"variable_sip_hangup_disposition", "send_bye"})
	}
	return plainEvent(hs, "")
}

// backgroundJob is api_exec's BACKGROUND_JOB event: the result is the body.
func backgroundJob(id, cmd, result string) string {
	name, arg, _ := strings.Cut(cmd, " ")
	hs := append(stdHeaders("BACKGROUND_JOB", "", "mod_event_socket.c", "api_exec"),
		hdr{"Job-UUID", id}, hdr{"Job-Owner-UUID", ""}, hdr{"Job-Command", name}, hdr{"Job-Command-Arg", arg})
	return plainEvent(hs, result)
}
