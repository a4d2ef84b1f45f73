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

// ErrNoAnswer is returned by Probe when nothing came back in time.
var ErrNoAnswer = errors.New("no answer")

// Probe sends one OPTIONS request over UDP from address from (any local
// address when zero) to to, and returns the status code of the first
// response that arrives within wait, or ErrNoAnswer. Its User-Agent is
// "testpeer-probe", which no scanner fingerprint matches.
func Probe(from netip.Addr, to netip.AddrPort, wait time.Duration) (int, error) {
	var laddr *net.UDPAddr
	if from.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0))
	}
	c, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return 0, fmt.Errorf("probe: dialing %s: %w", to, err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bKprobe%d", time.Now().UnixNano())
	msg := "OPTIONS sip:" + to.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + ";rport\r\n" +
		"From: <sip:probe@" + local + ">;tag=" + branch[7:] + "\r\n" +
		"To: <sip:" + to.String() + ">\r\n" +
		"Call-ID: " + branch + "\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: testpeer-probe\r\nContent-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return 0, fmt.Errorf("probe: sending OPTIONS: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, ErrNoAnswer
			}
			return 0, fmt.Errorf("probe: reading answer: %w", err)
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "SIP/2.0" {
			return 0, fmt.Errorf("probe: answer %q is not a SIP response", line)
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			return 0, fmt.Errorf("probe: status in %q: %w", line, err)
		}
		if code >= 200 {
			return code, nil
		}
	}
}
