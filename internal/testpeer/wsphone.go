package testpeer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/icholy/digest"
)

// WSPhoneOptions describes a browser phone: SIP over WebSocket (RFC 7118)
// with the "sip" subprotocol.
type WSPhoneOptions struct {
	// Local is the phone's source address.
	Local netip.Addr
	// Server is the ws:// or wss:// listener.
	Server netip.AddrPort
	// Secure dials wss:// (TLS, verified against Roots) instead of ws://.
	Secure bool
	Roots  *x509.CertPool
	// Origin, when set, is sent as a browser would.
	Origin string
	// User and Password are the digest credentials; User is also the
	// account registered.
	User, Password string
}

// WSPhone is a connected browser phone. Its methods are not safe for
// concurrent use.
type WSPhone struct {
	o     WSPhoneOptions
	c     net.Conn
	rw    io.ReadWriter
	proto string // "WS" or "WSS"
	host  string // the made-up host browsers put in Via and Contact
	cseq  uint32
}

// DialWSPhone opens the WebSocket connection.
func DialWSPhone(ctx context.Context, o WSPhoneOptions) (*WSPhone, error) {
	scheme, proto := "ws", "WS"
	if o.Secure {
		scheme, proto = "wss", "WSS"
	}
	d := ws.Dialer{
		Protocols: []string{"sip"},
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: o.Local.AsSlice()}}
			return nd.DialContext(ctx, network, addr)
		},
		TLSConfig: &tls.Config{RootCAs: o.Roots, MinVersion: tls.VersionTLS12},
	}
	if o.Origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": []string{o.Origin}})
	}
	c, br, hs, err := d.Dial(ctx, scheme+"://"+o.Server.String())
	if err != nil {
		return nil, fmt.Errorf("ws phone: dial: %w", err)
	}
	if hs.Protocol != "sip" {
		c.Close()
		return nil, fmt.Errorf("ws phone: server chose subprotocol %q, want sip", hs.Protocol)
	}
	p := &WSPhone{o: o, c: c, rw: c, proto: proto, host: randomToken() + ".invalid"}
	if br != nil {
		p.rw = struct {
			io.Reader
			io.Writer
		}{br, c}
	}
	return p, nil
}

// Close closes the connection.
func (p *WSPhone) Close() error { return p.c.Close() }

func (p *WSPhone) send(m sip.Message) error {
	_ = p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return wsutil.WriteClientText(p.c, []byte(m.String()))
}

// recv returns the next SIP message; CRLF keep-alive answers are skipped.
func (p *WSPhone) recv(ctx context.Context) (sip.Message, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(10 * time.Second)
	}
	_ = p.c.SetReadDeadline(dl)
	for {
		data, _, err := wsutil.ReadServerData(p.rw)
		if err != nil {
			return nil, fmt.Errorf("ws phone: read: %w", err)
		}
		if strings.TrimSpace(string(data)) == "" {
			continue
		}
		return sip.ParseMessage(data)
	}
}

// Register sends REGISTER and, on a 401/407 challenge, a second one with
// digest credentials (RFC 3261 §22.2). It returns the final status code.
func (p *WSPhone) Register(ctx context.Context) (int, error) {
	uri := sip.Uri{Scheme: "sip", Host: p.o.Server.Addr().String(), Port: int(p.o.Server.Port())}
	callID := randomToken()
	var auth string
	for range 2 {
		req := p.request(sip.REGISTER, uri, callID, sip.Uri{Scheme: "sip", User: p.o.User, Host: p.o.Server.Addr().String()}, "")
		req.AppendHeader(sip.NewHeader("Expires", "600"))
		if auth != "" {
			req.AppendHeader(sip.NewHeader("Authorization", auth))
		}
		res, err := p.final(ctx, req)
		if err != nil {
			return 0, err
		}
		if res.StatusCode != 401 && res.StatusCode != 407 || auth != "" {
			return res.StatusCode, nil
		}
		h := res.GetHeader("WWW-Authenticate")
		if h == nil {
			h = res.GetHeader("Proxy-Authenticate")
		}
		if h == nil {
			return res.StatusCode, errors.New("ws phone: challenge without a WWW-Authenticate header")
		}
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			return 0, fmt.Errorf("ws phone: challenge: %w", err)
		}
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: uri.String(), Username: p.o.User, Password: p.o.Password})
		if err != nil {
			return 0, fmt.Errorf("ws phone: digest: %w", err)
		}
		auth = cred.String()
	}
	return 0, errors.New("ws phone: no final answer")
}

// request builds a request from the phone, with its WS/WSS Via and
// Contact (RFC 7118 §5.2: a made-up host, transport=ws).
func (p *WSPhone) request(m sip.RequestMethod, ruri sip.Uri, callID string, to sip.Uri, toTag string) *sip.Request {
	p.cseq++
	req := sip.NewRequest(m, ruri)
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: p.proto, Host: p.host,
		Params: sip.HeaderParams{{K: "branch", V: sip.RFC3261BranchMagicCookie + randomToken()}}})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.o.User, Host: p.o.Server.Addr().String()},
		Params: sip.HeaderParams{{K: "tag", V: randomToken()}}})
	th := &sip.ToHeader{Address: to}
	if toTag != "" {
		th.Params = sip.HeaderParams{{K: "tag", V: toTag}}
	}
	req.AppendHeader(th)
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: p.cseq, MethodName: m})
	req.AppendHeader(p.contact())
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	return req
}

func (p *WSPhone) contact() *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.o.User, Host: p.host,
		UriParams: sip.HeaderParams{{K: "transport", V: "ws"}}}}
}

// final sends req and returns its final response; requests that arrive
// meanwhile are an error.
func (p *WSPhone) final(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if err := p.send(req); err != nil {
		return nil, fmt.Errorf("ws phone: send: %w", err)
	}
	for {
		m, err := p.recv(ctx)
		if err != nil {
			return nil, err
		}
		res, ok := m.(*sip.Response)
		if !ok {
			return nil, fmt.Errorf("ws phone: got a request while waiting for an answer: %s", m.(*sip.Request).Method)
		}
		if res.StatusCode >= 200 {
			return res, nil
		}
	}
}

// AnswerCall waits for an INVITE, answers it 180 then 200 (with an SDP
// body), waits for the ACK and the BYE, and answers the BYE 200. It returns
// the INVITE as received.
func (p *WSPhone) AnswerCall(ctx context.Context) (*sip.Request, error) {
	var invite *sip.Request
	tag := randomToken()
	for {
		m, err := p.recv(ctx)
		if err != nil {
			return invite, err
		}
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		switch req.Method {
		case sip.INVITE:
			invite = req
			ringing := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
			ringing.To().Params.Add("tag", tag)
			if err := p.send(ringing); err != nil {
				return invite, err
			}
			sdp := "v=0\r\no=- 1 1 IN IP4 " + p.o.Local.String() + "\r\ns=-\r\nc=IN IP4 " + p.o.Local.String() +
				"\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
			ok := sip.NewResponseFromRequest(req, 200, "OK", []byte(sdp))
			ok.To().Params.Add("tag", tag)
			ok.AppendHeader(p.contact())
			ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			if err := p.send(ok); err != nil {
				return invite, err
			}
		case sip.ACK:
		case sip.BYE:
			if err := p.send(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
				return invite, err
			}
			if invite == nil {
				return nil, errors.New("ws phone: BYE without an INVITE")
			}
			return invite, nil
		default:
			if err := p.send(sip.NewResponseFromRequest(req, 200, "OK", nil)); err != nil {
				return invite, err
			}
		}
	}
}

func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
