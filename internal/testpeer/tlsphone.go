package testpeer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/netip"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TLSPhoneOptions describes a phone that registers over TLS (Debian's sipp
// is built without TLS, so this one is a sipgo client).
type TLSPhoneOptions struct {
	// Local is the phone's source address.
	Local netip.Addr
	// Server is the TLS listener to register with.
	Server netip.AddrPort
	// User and Password are the digest credentials; User is also the
	// account registered.
	User, Password string
	// Roots verifies the server certificate.
	Roots *x509.CertPool
	// Certificate, when set, is presented for mutual TLS.
	Certificate *tls.Certificate
}

// RegisterTLS registers opts.User over TLS: REGISTER, and on a 401/407
// challenge a second REGISTER with digest credentials (RFC 3261 §22.2). It
// returns the final status code of the last REGISTER, or an error when no
// final response arrived (for example when the TLS handshake was refused).
func RegisterTLS(ctx context.Context, opts TLSPhoneOptions) (int, error) {
	conf := &tls.Config{RootCAs: opts.Roots, MinVersion: tls.VersionTLS12}
	if opts.Certificate != nil {
		conf.Certificates = []tls.Certificate{*opts.Certificate}
	}
	local := opts.Local.String()
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(opts.User),
		sipgo.WithUserAgentHostname(local),
		sipgo.WithUserAgenTLSConfig(conf),
	)
	if err != nil {
		return 0, fmt.Errorf("tls phone: creating user agent: %w", err)
	}
	defer ua.Close()
	cli, err := sipgo.NewClient(ua,
		sipgo.WithClientHostname(local),
		sipgo.WithClientConnectionAddr(local+":0"),
		sipgo.WithClientLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	)
	if err != nil {
		return 0, fmt.Errorf("tls phone: creating client: %w", err)
	}
	recipient := sip.Uri{Scheme: "sip", User: opts.User, Host: opts.Server.Addr().String(), Port: int(opts.Server.Port())}
	req := sip.NewRequest(sip.REGISTER, recipient)
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s;transport=tls>", opts.User, local)))
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	req.SetTransport("TLS")

	res, err := cli.Do(ctx, req, sipgo.ClientRequestRegisterBuild)
	if err != nil {
		return 0, fmt.Errorf("tls phone: REGISTER: %w", err)
	}
	if res.StatusCode != sip.StatusUnauthorized && res.StatusCode != sip.StatusProxyAuthRequired {
		return res.StatusCode, nil
	}
	res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: opts.User, Password: opts.Password})
	if err != nil {
		return 0, fmt.Errorf("tls phone: REGISTER with credentials: %w", err)
	}
	return res.StatusCode, nil
}
