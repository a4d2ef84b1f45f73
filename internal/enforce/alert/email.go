package alert

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// ErrNoSTARTTLS is returned when a mail server configured for starttls
// does not offer it: tollguard never sends credentials or alert text in
// clear to a server that was expected to encrypt.
var ErrNoSTARTTLS = errors.New("the mail server does not offer STARTTLS")

// email sends plain-text mail over SMTP.
type email struct {
	addr, host, mode string
	roots            *x509.CertPool
	user, pass, from string
	to               []string
	helo             string
	r                *renderer
	now              func() time.Time
}

func (e *email) send(ctx context.Context, m *Message) (err error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.addr)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", e.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	tc := &tls.Config{ServerName: e.host, RootCAs: e.roots, MinVersion: tls.VersionTLS12}
	if e.mode == "tls" {
		conn = tls.Client(conn, tc)
	}
	c, err := smtp.NewClient(conn, e.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", e.addr, err)
	}
	defer c.Close()
	wrap := func(step string, err error) error { return fmt.Errorf("smtp %s: %s: %w", e.addr, step, err) }
	if err := c.Hello(e.helo); err != nil {
		return wrap("EHLO", err)
	}
	if e.mode == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanent(wrap("STARTTLS", ErrNoSTARTTLS))
		}
		if err := c.StartTLS(tc); err != nil {
			return permanent(wrap("STARTTLS", err))
		}
	}
	if e.user != "" {
		if _, ok := c.TLSConnectionState(); !ok {
			return permanent(wrap("AUTH", errors.New("refusing to send credentials without TLS")))
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent(wrap("AUTH", errors.New("the server offers no AUTH")))
		}
		if err := c.Auth(smtp.PlainAuth("", e.user, e.pass, e.host)); err != nil {
			return permanent(wrap("AUTH", err))
		}
	}
	if err := c.Mail(e.from); err != nil {
		return wrap("MAIL FROM", err)
	}
	for _, t := range e.to {
		if err := c.Rcpt(t); err != nil {
			return wrap("RCPT TO", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return wrap("DATA", err)
	}
	if _, err := w.Write(e.message(m)); err != nil {
		return wrap("DATA", err)
	}
	if err := w.Close(); err != nil {
		return wrap("DATA", err)
	}
	return c.Quit()
}

// message builds the RFC 5322 message: UTF-8 text, base64 encoded, the
// subject RFC 2047 encoded. Nothing an attacker chose goes into a header.
func (e *email) message(m *Message) []byte {
	var id [12]byte
	rand.Read(id[:])
	var b strings.Builder
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", e.from)
	hdr("To", strings.Join(e.to, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", e.r.title(m)))
	hdr("Date", e.now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@tollguard>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "base64")
	b.WriteString("\r\n")
	enc := base64.StdEncoding.EncodeToString([]byte(e.r.body(m)))
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return []byte(b.String())
}
