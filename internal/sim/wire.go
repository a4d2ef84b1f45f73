package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// errSilence means no final response arrived within the per-request
// timeout: the target (or a guard in front of it) dropped the request.
var errSilence = errors.New("no answer")

// peer is a raw UDP SIP endpoint bound to one source address, used by the
// attackers. Like the tools it imitates it is stateless: it sends
// hand-built requests and waits for the final response with the same
// Call-ID and CSeq. It does not retransmit (RFC 3261 §17.1.2.2 Timer E):
// on loopback nothing is lost, and a missing answer means a drop.
type peer struct {
	conn   *net.UDPConn
	local  netip.AddrPort
	target netip.AddrPort
	buf    []byte
}

func newPeer(ctx context.Context, source netip.Addr, target netip.AddrPort) (*peer, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", netip.AddrPortFrom(source, 0).String())
	if err != nil {
		return nil, fmt.Errorf("sim: binding %s: %w", source, err)
	}
	conn := pc.(*net.UDPConn)
	return &peer{
		conn:   conn,
		local:  netip.MustParseAddrPort(conn.LocalAddr().String()),
		target: target,
		buf:    make([]byte, 65535),
	}, nil
}

func (p *peer) Close() error { return p.conn.Close() }

// exchange sends msg and returns the first final response whose Call-ID
// and CSeq match, or errSilence after timeout. Provisional responses and
// stray packets are skipped.
func (p *peer) exchange(ctx context.Context, msg rawRequest, timeout time.Duration) (*sip.Response, error) {
	data := msg.bytes(p.local)
	if _, err := p.conn.WriteToUDPAddrPort(data, p.target); err != nil {
		return nil, fmt.Errorf("sim: sending %s: %w", msg.Method, err)
	}
	return p.await(ctx, msg, time.Now().Add(timeout))
}

// Timers of an RFC 3261 UDP client transaction (§17.1.2.2).
const (
	timerT1 = 500 * time.Millisecond
	timerT2 = 4 * time.Second
)

// transact is exchange as a phone does it: the same datagram is sent
// again T1 after the first, then at doubling intervals capped at T2
// (RFC 3261 §17.1.2.2 Timer E), until a final response or timeout.
func (p *peer) transact(ctx context.Context, msg rawRequest, timeout time.Duration) (*sip.Response, error) {
	data := msg.bytes(p.local)
	end := time.Now().Add(timeout)
	for wait := timerT1; ; wait = min(2*wait, timerT2) {
		if _, err := p.conn.WriteToUDPAddrPort(data, p.target); err != nil {
			return nil, fmt.Errorf("sim: sending %s: %w", msg.Method, err)
		}
		next := time.Now().Add(wait)
		if next.After(end) {
			next = end
		}
		res, err := p.await(ctx, msg, next)
		if !errors.Is(err, errSilence) || !time.Now().Before(end) || ctx.Err() != nil {
			return res, err
		}
	}
}

// await returns the first final response to msg (same Call-ID and CSeq)
// that arrives before deadline, or errSilence.
func (p *peer) await(ctx context.Context, msg rawRequest, deadline time.Time) (*sip.Response, error) {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := p.conn.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("sim: setting deadline: %w", err)
	}
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errSilence
			}
			return nil, fmt.Errorf("sim: reading: %w", err)
		}
		m, err := sip.ParseMessage(p.buf[:n])
		if err != nil {
			continue
		}
		res, ok := m.(*sip.Response)
		if !ok || res.IsProvisional() || res.CallID() == nil || res.CSeq() == nil {
			continue
		}
		if string(*res.CallID()) == msg.CallID && int(res.CSeq().SeqNo) == msg.CSeq {
			return res, nil
		}
	}
}

// rawRequest is the data of one hand-built SIP request.
type rawRequest struct {
	Method      string
	URI         string // Request-URI
	FromUser    string
	FromDisplay string
	ToUser      string
	Domain      string // host part of From and To
	UserAgent   string
	CallID      string
	CSeq        int
	Extra       []string // complete extra header lines, without CRLF
}

// bytes renders the request with a Via and Contact for local (RFC 3261
// §8.1.1 mandatory headers; rport per RFC 3581).
func (r rawRequest) bytes(local netip.AddrPort) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.Method, r.URI)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n", local, randHex(8))
	b.WriteString("Max-Forwards: 70\r\n")
	if r.FromDisplay != "" {
		fmt.Fprintf(&b, "From: \"%s\" <sip:%s@%s>;tag=%s\r\n", r.FromDisplay, r.FromUser, r.Domain, randHex(4))
	} else {
		fmt.Fprintf(&b, "From: <sip:%s@%s>;tag=%s\r\n", r.FromUser, r.Domain, randHex(4))
	}
	fmt.Fprintf(&b, "To: <sip:%s@%s>\r\n", r.ToUser, r.Domain)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.CallID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.CSeq, r.Method)
	fmt.Fprintf(&b, "Contact: <sip:%s@%s>\r\n", r.FromUser, local)
	if r.UserAgent != "" {
		fmt.Fprintf(&b, "User-Agent: %s\r\n", r.UserAgent)
	}
	for _, h := range r.Extra {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// authorization computes the Authorization header line answering the
// WWW-Authenticate challenge in res for the given credentials.
func authorization(res *sip.Response, method, uri, user, password string) (string, error) {
	chal, resp := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		chal, resp = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(chal)
	if h == nil {
		return "", fmt.Errorf("sim: %d without %s", res.StatusCode, chal)
	}
	c, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return "", fmt.Errorf("sim: parsing challenge: %w", err)
	}
	cred, err := digest.Digest(c, digest.Options{Method: method, URI: uri, Username: user, Password: password})
	if err != nil {
		return "", fmt.Errorf("sim: computing digest: %w", err)
	}
	return resp + ": " + cred.String(), nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// statusCode is res's status, or 0 when no response came.
func statusCode(res *sip.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// domainOr is the SIP domain to use: d, or the target's address when d is
// empty.
func domainOr(d string, target netip.AddrPort) string {
	if d == "" {
		return target.Addr().String()
	}
	return d
}
