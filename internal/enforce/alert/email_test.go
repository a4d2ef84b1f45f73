package alert

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/testpeer"
)

// smtpSession is what the test SMTP server saw on one connection.
type smtpSession struct {
	cmds           []string // command verbs in order
	tls            bool     // STARTTLS completed
	authTLS        bool     // AUTH arrived over TLS
	user, pass     string
	from           string
	to             []string
	data           string
	receivedInFull bool
}

// smtpServer speaks just enough ESMTP for the email channel: EHLO,
// STARTTLS, AUTH PLAIN, MAIL, RCPT, DATA, QUIT.
type smtpServer struct {
	ln       net.Listener
	tlsConf  *tls.Config
	starttls bool // offer STARTTLS
	implicit bool // TLS from the first byte (port 465)
	mu       sync.Mutex
	sessions []*smtpSession
}

func newSMTPServer(t *testing.T, starttls bool) (*smtpServer, string) {
	return newSMTPServerMode(t, starttls, false)
}

func newSMTPServerMode(t *testing.T, starttls, implicit bool) (*smtpServer, string) {
	t.Helper()
	pki := testpeer.NewPKI(t, netip.MustParseAddr("127.0.0.1"))
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, tlsConf: &tls.Config{Certificates: []tls.Certificate{cert}}, starttls: starttls, implicit: implicit}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return s, pki.CAFile
}

func (s *smtpServer) serve(conn net.Conn) {
	defer func() { conn.Close() }()
	sess := &smtpSession{}
	if s.implicit {
		tc := tls.Server(conn, s.tlsConf)
		if tc.Handshake() != nil {
			return
		}
		conn, sess.tls = tc, true
	}
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()
	r := bufio.NewReader(conn)
	say := func(l string) { io.WriteString(conn, l+"\r\n") }
	say("220 mail.test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		s.mu.Lock()
		sess.cmds = append(sess.cmds, verb)
		s.mu.Unlock()
		switch verb {
		case "EHLO":
			say("250-mail.test")
			if s.starttls && !sess.tls {
				say("250-STARTTLS")
			}
			say("250-AUTH PLAIN") // offered even in clear: the client must refuse to use it
			say("250 8BITMIME")
		case "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(conn, s.tlsConf)
			if tc.Handshake() != nil {
				return
			}
			conn, r = tc, bufio.NewReader(tc)
			s.mu.Lock()
			sess.tls = true
			s.mu.Unlock()
		case "AUTH":
			mech, ir, _ := strings.Cut(arg, " ")
			raw, err := base64.StdEncoding.DecodeString(ir)
			parts := strings.Split(string(raw), "\x00")
			if mech != "PLAIN" || err != nil || len(parts) != 3 {
				say("535 bad auth")
				continue
			}
			s.mu.Lock()
			sess.user, sess.pass, sess.authTLS = parts[1], parts[2], sess.tls
			s.mu.Unlock()
			say("235 ok")
		case "MAIL":
			s.mu.Lock()
			sess.from = angle(arg)
			s.mu.Unlock()
			say("250 ok")
		case "RCPT":
			s.mu.Lock()
			sess.to = append(sess.to, angle(arg))
			s.mu.Unlock()
			say("250 ok")
		case "DATA":
			say("354 go")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			s.mu.Lock()
			sess.data, sess.receivedInFull = b.String(), true
			s.mu.Unlock()
			say("250 queued")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("500 unknown")
		}
	}
}

// angle returns the address between < and > in a MAIL or RCPT argument.
func angle(arg string) string {
	_, rest, _ := strings.Cut(arg, "<")
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}

func (s *smtpServer) only(t *testing.T) smtpSession {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sessions) != 1 {
		t.Fatalf("%d SMTP sessions, want 1", len(s.sessions))
	}
	return *s.sessions[0]
}

func mailChannel(addr, ca string) config.AlertChannel {
	return config.AlertChannel{Name: "mail", Type: "email", Language: "zh-CN", SMTP: config.SMTP{
		Addr: addr, CAFile: ca, Username: "tollguard@example.com", Password: "pa55word",
		From: "tollguard@example.com", To: []string{"oncall@example.com", "boss@example.com"}}}
}

func TestEmailSTARTTLSAuth(t *testing.T) {
	srv, ca := newSMTPServer(t, true)
	s := build(t, mailChannel(srv.ln.Addr().String(), ca))
	if err := s.send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	got := srv.only(t)
	if want := "EHLO STARTTLS EHLO AUTH MAIL RCPT RCPT DATA QUIT"; strings.Join(got.cmds, " ") != want {
		t.Errorf("commands %v, want %s", got.cmds, want)
	}
	if !got.authTLS || got.user != "tollguard@example.com" || got.pass != "pa55word" {
		t.Errorf("auth: tls %v user %q pass %q", got.authTLS, got.user, got.pass)
	}
	if got.from != "tollguard@example.com" || strings.Join(got.to, ",") != "oncall@example.com,boss@example.com" {
		t.Errorf("envelope %q → %v", got.from, got.to)
	}
	msg, err := mail.ReadMessage(strings.NewReader(got.data))
	if err != nil {
		t.Fatal(err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subj != "[tollguard] 警告 来源已封禁" {
		t.Errorf("subject %q (%v)", subj, err)
	}
	if msg.Header.Get("Content-Type") != "text/plain; charset=utf-8" || msg.Header.Get("Content-Transfer-Encoding") != "base64" ||
		msg.Header.Get("Message-ID") == "" || msg.Header.Get("Date") == "" {
		t.Errorf("headers %v", msg.Header)
	}
	body, err := io.ReadAll(base64.NewDecoder(base64.StdEncoding, msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if text := string(body); !strings.Contains(text, "封禁 203.0.113.66") || strings.Contains(text, "12345678") || strings.Contains(text, "@all") {
		t.Errorf("body:\n%s", text)
	}
}

// A server that offers no STARTTLS gets nothing: no credentials, no mail.
func TestEmailRefusesWithoutSTARTTLS(t *testing.T) {
	srv, ca := newSMTPServer(t, false)
	s := build(t, mailChannel(srv.ln.Addr().String(), ca))
	err := s.send(t.Context(), attackerBan())
	if !errors.Is(err, ErrNoSTARTTLS) || !isPermanent(err) {
		t.Fatalf("err %v, want ErrNoSTARTTLS, permanent", err)
	}
	got := srv.only(t)
	if got.user != "" || got.pass != "" || got.receivedInFull || strings.Contains(strings.Join(got.cmds, " "), "AUTH") {
		t.Errorf("client went on in clear: %+v", got)
	}
	if strings.Contains(err.Error(), "pa55word") {
		t.Errorf("password in error: %v", err)
	}
}

// A certificate the client does not trust stops the delivery before AUTH.
func TestEmailUntrustedCertificate(t *testing.T) {
	srv, _ := newSMTPServer(t, true)
	s := build(t, mailChannel(srv.ln.Addr().String(), ""))
	if err := s.send(t.Context(), attackerBan()); err == nil {
		t.Fatal("sent to a server with an untrusted certificate")
	}
	if got := srv.only(t); got.user != "" || got.receivedInFull {
		t.Errorf("credentials or mail sent: %+v", got)
	}
}

// tls: none is for a local relay without credentials.
func TestEmailPlainRelay(t *testing.T) {
	srv, _ := newSMTPServer(t, false)
	cc := mailChannel(srv.ln.Addr().String(), "")
	cc.SMTP.Username, cc.SMTP.Password, cc.SMTP.TLS = "", "", "none"
	if err := build(t, cc).send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	if got := srv.only(t); !got.receivedInFull || got.tls || got.user != "" {
		t.Errorf("relay session %+v", got)
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	srv, ca := newSMTPServerMode(t, false, true)
	cc := mailChannel(srv.ln.Addr().String(), ca)
	cc.SMTP.TLS = "tls"
	if err := build(t, cc).send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	got := srv.only(t)
	if want := "EHLO AUTH MAIL RCPT RCPT DATA QUIT"; strings.Join(got.cmds, " ") != want || !got.authTLS || !got.receivedInFull {
		t.Errorf("session %+v", got)
	}
}
