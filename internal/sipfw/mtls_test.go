package sipfw

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// testPKI is a CA with one server and one client certificate, made in the
// test.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.10")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{pool: pool, server: leaf(2, x509.ExtKeyUsageServerAuth), client: leaf(3, x509.ExtKeyUsageClientAuth)}
}

// TestMutualTLS checks sip.tls.client_ca: a client without a certificate
// cannot complete the handshake and nothing reaches the PBX; a client with
// a certificate from the CA gets its REGISTER through.
func TestMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	r := startRig(t, func(o *Options, _ *peer) {
		o.Listen = []string{"udp://127.0.0.10:0", "tls://127.0.0.10:0"}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool, ClientAuth: tls.RequireAndVerifyClientCert}
	})
	dial := func(ip string, certs []tls.Certificate) (*tls.Conn, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: waitLimit}
		return tls.DialWithDialer(d, "tcp", r.addr("tls").String(), &tls.Config{RootCAs: pki.pool, Certificates: certs})
	}
	reg := strings.Replace(register(nil, r.addr("tls"), "1020", ""), "SIP/2.0/UDP", "SIP/2.0/TLS", 1)
	// Logs print a listener as Network()+"://"+String().
	for u, a := range r.p.Addrs() {
		if want, _, _ := strings.Cut(u, ":"); a.Network() != want {
			t.Errorf("listener %s has network %q, want %q", u, a.Network(), want)
		}
	}

	t.Run("no certificate is refused", func(t *testing.T) {
		c, err := dial("127.0.0.41", nil)
		if err == nil {
			// With TLS 1.3 the client learns of the refusal on its first read.
			defer c.Close()
			_, _ = c.Write([]byte(crlf(reg)))
			_ = c.SetReadDeadline(time.Now().Add(waitLimit))
			_, err = c.Read(make([]byte, 100))
		}
		if err == nil {
			t.Fatal("a client without a certificate completed the handshake")
		}
		waitCounter(t, r.p.m.drops[dropTLS], 1)
		r.pbx.empty()
	})
	t.Run("valid certificate works", func(t *testing.T) {
		c, err := dial("127.0.0.42", []tls.Certificate{pki.client})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(crlf(reg))); err != nil {
			t.Fatal(err)
		}
		req := r.pbx.recvReq()
		if v := req.GetHeaders("Via"); len(v) != 2 || !strings.Contains(v[1].Value(), "TLS") {
			t.Errorf("Vias at PBX = %v", v)
		}
		if p := req.GetHeader("Path"); p == nil || !strings.Contains(p.Value(), "tg.1.") {
			t.Errorf("Path = %v, want the TLS listener's flow", p)
		}
		r.pbx.answer(req, 200, "OK", nil)
		if res := readTCPResponse(t, c); !strings.HasPrefix(res, "SIP/2.0 200") {
			t.Errorf("client got %q", firstLine(res))
		}
	})
}
