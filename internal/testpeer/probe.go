package testpeer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ErrNoAnswer is returned by Probe and Send when nothing came back in time.
var ErrNoAnswer = errors.New("no answer")

// Request is one out-of-dialog request without credentials, sent by Send.
// The zero value is Probe's OPTIONS to the server itself.
type Request struct {
	// Method is the SIP method; default OPTIONS.
	Method string
	// User is the Request-URI and To user; empty addresses the server.
	User string
	// From is the From user; default "probe".
	From string
	// UserAgent is the User-Agent; default "testpeer-probe", which no
	// scanner fingerprint matches.
	UserAgent string
	// Headers are added as they are ("X-Call-Token: 123456").
	Headers []string
	// Body, when set, is sent as application/sdp.
	Body string
}

// Probe sends one OPTIONS request over UDP from address from (any local
// address when zero) to to, and returns the status code of the first
// final response that arrives within wait, or ErrNoAnswer.
func Probe(from netip.Addr, to netip.AddrPort, wait time.Duration) (int, error) {
	return Send(from, to, Request{}, wait)
}

// Send sends r over UDP from address from (any local address when zero) to
// to and returns the status code of the first final response within wait,
// or ErrNoAnswer. A non-2xx final answer to an INVITE is acknowledged with
// the INVITE's branch (RFC 3261 §17.1.1.3), so the server stops
// retransmitting it.
func Send(from netip.Addr, to netip.AddrPort, r Request, wait time.Duration) (int, error) {
	code, _, err := SendAnswer(from, to, r, wait)
	return code, err
}

// SendAnswer is Send that also returns the final response's text.
func SendAnswer(from netip.Addr, to netip.AddrPort, r Request, wait time.Duration) (int, string, error) {
	if r.Method == "" {
		r.Method = "OPTIONS"
	}
	if r.From == "" {
		r.From = "probe"
	}
	if r.UserAgent == "" {
		r.UserAgent = "testpeer-probe"
	}
	var laddr *net.UDPAddr
	if from.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
	}
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return 0, "", fmt.Errorf("probe: dialing %s: %w", to, err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	ruri := "sip:" + to.String()
	if r.User != "" {
		ruri = "sip:" + r.User + "@" + to.String()
	}
	branch := fmt.Sprintf("z9hG4bKprobe%d", time.Now().UnixNano())
	via := "Via: SIP/2.0/UDP " + local + ";branch=" + branch + ";rport\r\n"
	from_ := "From: <sip:" + r.From + "@" + local + ">;tag=" + branch[7:] + "\r\n"
	callID := "Call-ID: " + branch + "\r\n"
	msg := r.Method + " " + ruri + " SIP/2.0\r\n" + via + from_ +
		"To: <" + ruri + ">\r\n" + callID +
		"CSeq: 1 " + r.Method + "\r\nMax-Forwards: 70\r\n" +
		"Contact: <sip:" + r.From + "@" + local + ">\r\n" +
		"User-Agent: " + r.UserAgent + "\r\n"
	for _, h := range r.Headers {
		msg += h + "\r\n"
	}
	if r.Body != "" {
		msg += "Content-Type: application/sdp\r\n"
	}
	msg += "Content-Length: " + strconv.Itoa(len(r.Body)) + "\r\n\r\n" + r.Body
	if _, err := c.Write([]byte(msg)); err != nil {
		return 0, "", fmt.Errorf("probe: sending %s: %w", r.Method, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 8192)
	for {
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, "", ErrNoAnswer
			}
			return 0, "", fmt.Errorf("probe: reading answer: %w", err)
		}
		res := string(buf[:n])
		line, _, _ := strings.Cut(res, "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "SIP/2.0" {
			return 0, "", fmt.Errorf("probe: answer %q is not a SIP response", line)
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, "", fmt.Errorf("probe: status in %q: %w", line, err)
		}
		if code < 200 {
			continue
		}
		if r.Method == "INVITE" && code >= 300 {
			ack := "ACK " + ruri + " SIP/2.0\r\n" + via + from_ + "To: " + header(res, "To") + "\r\n" + callID +
				"CSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
			_, _ = c.Write([]byte(ack))
		}
		return code, res, nil
	}
}

// header returns the value of the first header called name (or its
// compact form for To) in a SIP message, or "".
func header(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n")[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if strings.EqualFold(k, name) || name == "To" && k == "t" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
