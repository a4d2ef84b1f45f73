package sipfw

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// clientFrame is one masked client frame (RFC 6455 §5.1).
func clientFrame(fin bool, op ws.OpCode, rsv byte, payload []byte) []byte {
	var b bytes.Buffer
	mask := [4]byte{1, 2, 3, 4}
	_ = ws.WriteHeader(&b, ws.Header{Fin: fin, OpCode: op, Rsv: rsv, Masked: true, Mask: mask, Length: int64(len(payload))})
	p := bytes.Clone(payload)
	ws.Cipher(p, mask, 0)
	b.Write(p)
	return b.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWSReader(t *testing.T) {
	sipMsg := []byte("OPTIONS sip:a@b SIP/2.0\r\n\r\n")
	unmasked := func() []byte {
		var b bytes.Buffer
		_ = ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: ws.OpText, Length: 3})
		b.WriteString("abc")
		return b.Bytes()
	}()
	var pings [][]byte
	for range wsMaxControl + 1 {
		pings = append(pings, clientFrame(true, ws.OpPing, 0, []byte("p")))
	}
	var tiny [][]byte
	tiny = append(tiny, clientFrame(false, ws.OpText, 0, []byte("a")))
	for range wsMaxFrames {
		tiny = append(tiny, clientFrame(false, ws.OpContinuation, 0, nil))
	}
	hugeHeader := func() []byte {
		var b bytes.Buffer
		_ = ws.WriteHeader(&b, ws.Header{Fin: true, OpCode: ws.OpText, Masked: true, Length: 1 << 40})
		return b.Bytes() // no payload: it must be refused before reading one
	}()
	type out struct {
		op  ws.OpCode
		msg string
	}
	tests := []struct {
		name    string
		in      []byte
		want    []out
		wantErr error
	}{
		{"one text frame", clientFrame(true, ws.OpText, 0, sipMsg), []out{{ws.OpText, string(sipMsg)}}, io.EOF},
		{"binary frame", clientFrame(true, ws.OpBinary, 0, sipMsg), []out{{ws.OpText, string(sipMsg)}}, io.EOF},
		{"fragmented message", cat(clientFrame(false, ws.OpText, 0, sipMsg[:5]), clientFrame(false, ws.OpContinuation, 0, sipMsg[5:9]),
			clientFrame(true, ws.OpContinuation, 0, sipMsg[9:])), []out{{ws.OpText, string(sipMsg)}}, io.EOF},
		{"ping between fragments", cat(clientFrame(false, ws.OpText, 0, sipMsg[:5]), clientFrame(true, ws.OpPing, 0, []byte("hi")),
			clientFrame(true, ws.OpContinuation, 0, sipMsg[5:])), []out{{ws.OpPing, "hi"}, {ws.OpText, string(sipMsg)}}, io.EOF},
		{"message at the limit", clientFrame(true, ws.OpText, 0, bytes.Repeat([]byte("x"), 64)), []out{{ws.OpText, strings.Repeat("x", 64)}}, io.EOF},
		{"frame over the limit", clientFrame(true, ws.OpText, 0, bytes.Repeat([]byte("x"), 65)), nil, errWSTooLarge},
		{"fragments adding up over the limit", cat(clientFrame(false, ws.OpText, 0, bytes.Repeat([]byte("x"), 40)),
			clientFrame(true, ws.OpContinuation, 0, bytes.Repeat([]byte("x"), 25))), nil, errWSTooLarge},
		{"header claiming a terabyte", hugeHeader, nil, errWSTooLarge},
		{"unmasked client frame", unmasked, nil, errWSProtocol},
		{"reserved bit without extension", clientFrame(true, ws.OpText, 4, sipMsg), nil, errWSProtocol},
		{"reserved opcode", clientFrame(true, ws.OpCode(0x3), 0, sipMsg), nil, errWSProtocol},
		{"continuation without a start", clientFrame(true, ws.OpContinuation, 0, sipMsg), nil, errWSProtocol},
		{"new message inside a fragmented one", cat(clientFrame(false, ws.OpText, 0, sipMsg[:5]), clientFrame(true, ws.OpText, 0, sipMsg)), nil, errWSProtocol},
		{"fragmented ping", clientFrame(false, ws.OpPing, 0, []byte("p")), nil, errWSProtocol},
		{"control frame over 125 bytes", clientFrame(true, ws.OpPing, 0, bytes.Repeat([]byte("p"), 126)), nil, errWSProtocol},
		{"ping flood", cat(pings...), func() []out {
			var o []out
			for range wsMaxControl {
				o = append(o, out{ws.OpPing, "p"})
			}
			return o
		}(), errWSProtocol},
		{"a thousand empty fragments", cat(tiny...), nil, errWSProtocol},
		{"truncated payload", clientFrame(true, ws.OpText, 0, sipMsg)[:10], nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newWSReader(bytes.NewReader(tc.in), 64)
			var got []out
			var err error
			for {
				var op ws.OpCode
				var p []byte
				op, p, err = r.next()
				if err != nil {
					break
				}
				got = append(got, out{op, string(p)})
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d messages %q, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("message %d = %v %q, want %v %q", i, got[i].op, got[i].msg, tc.want[i].op, tc.want[i].msg)
				}
			}
		})
	}
}

func TestOriginAllowed(t *testing.T) {
	tests := []struct {
		name, origin, host string
		allowed            []string
		want               bool
	}{
		{"no Origin: not a browser", "", "sip.example:443", nil, true},
		{"page on the guard's own host", "https://sip.example:443", "sip.example:443", nil, true},
		{"cross-origin page, nothing allowed", "https://evil.example", "sip.example:443", nil, false},
		{"cross-origin page listed", "https://app.example", "sip.example:443", []string{"https://app.example"}, true},
		{"listed in another letter case", "https://APP.example", "sip.example:443", []string{"https://app.example"}, true},
		{"another port is another origin", "https://app.example:8443", "sip.example:443", []string{"https://app.example"}, false},
		{"wildcard", "https://evil.example", "sip.example:443", []string{"*"}, true},
		{"opaque origin", "null", "sip.example:443", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := originAllowed(tc.origin, tc.host, tc.allowed); got != tc.want {
				t.Errorf("originAllowed(%q, %q, %q) = %v, want %v", tc.origin, tc.host, tc.allowed, got, tc.want)
			}
		})
	}
}

// startWSRig runs a proxy with ws:// and wss:// listeners on 127.0.0.10.
func startWSRig(t *testing.T, mod func(*Options)) (*rig, *testPKI) {
	t.Helper()
	pki := newTestPKI(t)
	r := startRig(t, func(o *Options, _ *peer) {
		o.Listen = []string{"udp://127.0.0.10:0", "ws://127.0.0.10:0", "wss://127.0.0.10:0"}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}
		o.WSOrigins = []string{"https://app.example"}
		if mod != nil {
			mod(o)
		}
	})
	return r, pki
}

// wsClient is a browser phone's connection.
type wsClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dialWS opens a WebSocket from ip to the proxy's scheme listener with
// the given subprotocols and Origin.
func dialWS(t *testing.T, r *rig, pki *testPKI, scheme, ip string, protocols []string, origin string) (*wsClient, error) {
	t.Helper()
	d := ws.Dialer{
		Protocols: protocols,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			return nd.DialContext(ctx, network, addr)
		},
		TLSConfig: &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12},
		Timeout:   waitLimit,
	}
	if origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": []string{origin}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, br, _, err := d.Dial(ctx, scheme+"://"+r.addr(scheme).String())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	if br == nil {
		br = bufio.NewReader(c)
	}
	return &wsClient{t: t, c: c, r: br}, nil
}

func (w *wsClient) send(msg string) {
	w.t.Helper()
	if err := wsutil.WriteClientText(w.c, []byte(crlf(msg))); err != nil {
		w.t.Fatalf("ws send: %v", err)
	}
}

// recv returns the next data message from the proxy.
func (w *wsClient) recv() string {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		h, err := ws.ReadHeader(w.r)
		if err != nil {
			w.t.Fatalf("ws recv: %v", err)
		}
		if h.Masked {
			w.t.Fatalf("server frame masked")
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(w.r, p); err != nil {
			w.t.Fatalf("ws recv: %v", err)
		}
		if h.OpCode.IsData() {
			return string(p)
		}
		if h.OpCode == ws.OpClose {
			w.t.Fatalf("ws closed by the proxy: %x", p)
		}
	}
}

// TestWSRegisterAndCallBack: a browser phone registers over ws:// and
// wss://; the PBX sees Via transport WS/WSS from the phone and reaches it
// again by its Path over the same WebSocket, with the proxy's Record-Route
// naming transport=ws (RFC 7118 §5).
func TestWSRegisterAndCallBack(t *testing.T) {
	r, pki := startWSRig(t, nil)
	for i, scheme := range []string{"ws", "wss"} {
		t.Run(scheme, func(t *testing.T) {
			ph, err := dialWS(t, r, pki, scheme, "127.0.0.4"+string(rune('1'+i)), []string{"sip"}, "https://app.example")
			if err != nil {
				t.Fatal(err)
			}
			user := "20" + string(rune('1'+i))
			ph.send(strings.Replace(register(nil, r.addr(scheme), user, ""), "SIP/2.0/UDP 192.168.1.10:5060", "SIP/2.0/"+strings.ToUpper(scheme)+" df7jal23ls0d.invalid", 1))
			reg := r.pbx.recvReq()
			if v := reg.Via(); v.Transport != "UDP" {
				t.Errorf("top Via to the PBX %q, want the UDP inside listener", v.Transport)
			}
			if vs := reg.GetHeaders("Via"); len(vs) < 2 || !strings.Contains(vs[1].Value(), strings.ToUpper(scheme)) {
				t.Errorf("phone's Via lost: %v", vs)
			}
			path := reg.GetHeader("Path").Value()
			r.pbx.answer(reg, 200, "OK", nil)
			if res := ph.recv(); !strings.HasPrefix(res, "SIP/2.0 200") {
				t.Fatalf("phone got %q", firstLine(res))
			}
			r.pbx.send(r.addr("udp"), pbxRequest("INVITE", "ws-call-"+scheme, path, ""))
			inv := ph.recv()
			if !strings.HasPrefix(inv, "INVITE ") {
				t.Fatalf("phone got %q", firstLine(inv))
			}
			wantVia := "Via: SIP/2.0/" + strings.ToUpper(scheme) + " 127.0.0.10:" + strconv.Itoa(int(r.addr(scheme).Port()))
			if !strings.Contains(inv, wantVia) {
				t.Errorf("INVITE to the phone lacks %q:\n%s", wantVia, inv)
			}
			wantRR := map[string]string{"ws": "<sip:", "wss": "<sips:"}[scheme]
			if !strings.Contains(inv, "Record-Route: "+wantRR) || !strings.Contains(inv, ";transport=ws;lr>") {
				t.Errorf("INVITE to the phone lacks a %stransport=ws Record-Route:\n%s", wantRR, inv)
			}
		})
	}
}

// TestWSRefused: a client without the sip subprotocol, a cross-origin
// page, a frame over max_message_size and a ping flood are refused and
// counted, and nothing reaches the PBX.
func TestWSRefused(t *testing.T) {
	r, pki := startWSRig(t, func(o *Options) { o.MaxMessageSize = 2048 })
	t.Run("no sip subprotocol", func(t *testing.T) {
		_, err := dialWS(t, r, pki, "ws", "127.0.0.51", []string{"chat"}, "")
		var rej ws.StatusError
		if !errors.As(err, &rej) || int(rej) != 400 {
			t.Errorf("dial = %v, want 400", err)
		}
		waitCounter(t, r.p.m.drops[dropWS], 1)
	})
	t.Run("cross-origin page", func(t *testing.T) {
		_, err := dialWS(t, r, pki, "wss", "127.0.0.52", []string{"sip"}, "https://evil.example")
		var rej ws.StatusError
		if !errors.As(err, &rej) || int(rej) != 403 {
			t.Errorf("dial = %v, want 403", err)
		}
		waitCounter(t, r.p.m.drops[dropWSOrigin], 1)
	})
	t.Run("frame over max_message_size", func(t *testing.T) {
		ph, err := dialWS(t, r, pki, "ws", "127.0.0.53", []string{"sip"}, "")
		if err != nil {
			t.Fatal(err)
		}
		_ = wsutil.WriteClientText(ph.c, bytes.Repeat([]byte("x"), 4096))
		waitCounter(t, r.p.m.drops[dropTooLarge], 1)
		if !closedByProxy(ph.c) {
			t.Error("connection still open")
		}
	})
	t.Run("ping flood", func(t *testing.T) {
		ph, err := dialWS(t, r, pki, "ws", "127.0.0.54", []string{"sip"}, "")
		if err != nil {
			t.Fatal(err)
		}
		n := testutilValue(r.p.m.drops[dropWS])
		for range wsMaxControl + 1 {
			if _, err := ph.c.Write(clientFrame(true, ws.OpPing, 0, []byte("p"))); err != nil {
				break
			}
		}
		waitCounter(t, r.p.m.drops[dropWS], n+1)
		if !closedByProxy(ph.c) {
			t.Error("connection still open")
		}
	})
	r.pbx.quiet()
}

// TestWSIdleSockets: thousands of WebSocket sockets that never finish the
// upgrade hold no more than the per-source cap and are closed at the
// first-message deadline.
func TestWSIdleSockets(t *testing.T) {
	r, _ := startWSRig(t, func(o *Options) {
		o.MaxConnectionsPerSource = 16
		o.FirstMessageTimeout = 200 * time.Millisecond
	})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2000 {
		c, err := net.DialTCP("tcp", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.55:0")), net.TCPAddrFromAddrPort(r.addr("ws")))
		if err != nil {
			break // the host ran out of ports or descriptors: enough sockets
		}
		conns = append(conns, c)
	}
	if len(conns) < 100 {
		t.Fatalf("opened only %d sockets", len(conns))
	}
	// Every socket is either refused at the cap or held, then closed at
	// the deadline; the table never holds more than the cap.
	deadline := time.Now().Add(2 * waitLimit)
	for time.Now().Before(deadline) {
		if n, _ := r.p.conns.len(); n > 16 {
			t.Fatalf("%d connections held, want at most the per-source cap 16", n)
		}
		if testutilValue(r.p.m.drops[dropConnLimit])+testutilValue(r.p.m.drops[dropConnIdle]) >= float64(len(conns)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	limit, idle := testutilValue(r.p.m.drops[dropConnLimit]), testutilValue(r.p.m.drops[dropConnIdle])
	if limit+idle != float64(len(conns)) || limit == 0 || idle < 16 {
		t.Errorf("of %d sockets: %v refused at the cap, %v closed idle", len(conns), limit, idle)
	}
	if n, _ := r.p.conns.len(); n != 0 {
		t.Errorf("%d idle sockets still held after the first-message deadline", n)
	}
}

// BenchmarkWSReader measures reading one masked 1 KB SIP message.
func BenchmarkWSReader(b *testing.B) {
	frame := clientFrame(true, ws.OpText, 0, bytes.Repeat([]byte("a"), 1024))
	rd := bytes.NewReader(frame)
	w := newWSReader(rd, 65535)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		rd.Reset(frame)
		if _, _, err := w.next(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWSFrame measures framing one 1 KB SIP message for a phone.
func BenchmarkWSFrame(b *testing.B) {
	msg := bytes.Repeat([]byte("a"), 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		_ = wsFrame(msg)
	}
}
