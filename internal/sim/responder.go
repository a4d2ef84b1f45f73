package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
)

// Responder is a tiny stateless UAS that answers every OPTIONS and REGISTER
// with 200 OK at once, standing in for the PBX in benchmarks so that
// measured latency is the guard's, not the PBX's. Other methods get 501
// (RFC 3261 §21.5.2). Answers go to the packet's source address.
type Responder struct {
	conn     *net.UDPConn
	answered atomic.Uint64
	ignored  atomic.Uint64
}

// NewResponder binds addr ("127.0.0.x:0" style; port 0 picks one).
func NewResponder(ctx context.Context, addr netip.AddrPort) (*Responder, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(ctx, "udp4", addr.String())
	if err != nil {
		return nil, fmt.Errorf("sim: responder: binding %s: %w", addr, err)
	}
	conn := pc.(*net.UDPConn)
	// A large receive buffer absorbs bursts when a load generator
	// catches up after a scheduling stall.
	_ = conn.SetReadBuffer(4 << 20)
	return &Responder{conn: conn}, nil
}

// Addr returns the bound address.
func (r *Responder) Addr() netip.AddrPort {
	return netip.MustParseAddrPort(r.conn.LocalAddr().String())
}

// Answered returns how many requests were answered.
func (r *Responder) Answered() uint64 { return r.answered.Load() }

// Serve answers requests until ctx ends or the socket fails; it returns nil
// after ctx ended.
func (r *Responder) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	buf := make([]byte, 65535)
	out := make([]byte, 0, 2048)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("sim: responder: reading: %w", err)
		}
		var ok bool
		out, ok = AppendResponse(out[:0], buf[:n])
		if !ok {
			r.ignored.Add(1)
			continue
		}
		if _, err := r.conn.WriteToUDPAddrPort(out, from); err != nil {
			continue
		}
		r.answered.Add(1)
	}
}

// AppendResponse appends to dst the stateless response to the request in
// req: 200 OK for OPTIONS and REGISTER, 501 otherwise, copying Via, From,
// To, Call-ID and CSeq and adding a To tag (RFC 3261 §8.2.6.2). It reports
// false, appending nothing, when req is not a request with those headers or
// is an ACK (which gets no response, §17.2.1).
func AppendResponse(dst, req []byte) ([]byte, bool) {
	lineEnd := bytes.Index(req, []byte("\r\n"))
	if lineEnd < 0 {
		return dst, false
	}
	method, _, ok := bytes.Cut(req[:lineEnd], []byte(" "))
	if !ok || len(method) == 0 || bytes.HasPrefix(req, []byte("SIP/")) || string(method) == "ACK" {
		return dst, false
	}
	end := bytes.Index(req, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(req)
	}
	if end < lineEnd+2 {
		return dst, false // no header section at all
	}
	start := len(dst)
	switch string(method) {
	case "OPTIONS", "REGISTER":
		dst = append(dst, "SIP/2.0 200 OK\r\n"...)
	default:
		dst = append(dst, "SIP/2.0 501 Not Implemented\r\n"...)
	}
	var have [5]bool // via, from, call-id, cseq, to
	head := req[lineEnd+2 : end]
	for len(head) > 0 {
		line := head
		if i := bytes.Index(head, []byte("\r\n")); i >= 0 {
			line, head = head[:i], head[i+2:]
		} else {
			head = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		name := bytes.TrimSpace(line[:colon])
		switch {
		case eqAny(name, "Via", "v"):
			have[0] = true
		case eqAny(name, "From", "f"):
			have[1] = true
		case eqAny(name, "Call-ID", "i"):
			have[2] = true
		case eqAny(name, "CSeq", ""):
			have[3] = true
		case eqAny(name, "To", "t"):
			have[4] = true
			dst = append(dst, line...)
			if !bytes.Contains(line[colon:], []byte(";tag=")) {
				dst = append(dst, ";tag=sim"...)
			}
			dst = append(dst, "\r\n"...)
			continue
		default:
			continue
		}
		dst = append(dst, line...)
		dst = append(dst, "\r\n"...)
	}
	if have != [5]bool{true, true, true, true, true} {
		return dst[:start], false
	}
	dst = append(dst, "Content-Length: 0\r\n\r\n"...)
	return dst, true
}

func eqAny(name []byte, long, compact string) bool {
	return bytes.EqualFold(name, []byte(long)) || (compact != "" && bytes.EqualFold(name, []byte(compact)))
}
