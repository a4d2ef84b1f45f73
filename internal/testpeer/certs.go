package testpeer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority with one server and one client
// certificate, generated at test time into a temporary directory. Nothing
// here is ever committed.
type PKI struct {
	// CAFile is the CA certificate (PEM), for sip.tls.client_ca.
	CAFile string
	// ServerCert and ServerKey are PEM files for sip.tls.cert and key.
	ServerCert, ServerKey string
	// Roots trusts the CA; use it as a client's RootCAs.
	Roots *x509.CertPool
	// Client is a client certificate signed by the CA.
	Client tls.Certificate
	// Stranger is a client certificate signed by another CA.
	Stranger tls.Certificate
}

// NewPKI generates a CA, a server certificate valid for the given IP
// addresses, and client certificates (one from the CA, one from an
// unrelated CA), all ECDSA P-256 and valid for one hour.
func NewPKI(t testing.TB, serverIPs ...netip.Addr) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "testpeer CA")
	other, otherKey := newCA(t, "testpeer other CA")
	p := &PKI{
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server.key"),
		Roots:      x509.NewCertPool(),
	}
	p.Roots.AddCert(ca)
	writePEM(t, p.CAFile, "CERTIFICATE", ca.Raw)

	var ips []net.IP
	for _, a := range serverIPs {
		ips = append(ips, a.AsSlice())
	}
	srv, srvKey := leaf(t, ca, caKey, "tollguard test server", ips, x509.ExtKeyUsageServerAuth)
	writePEM(t, p.ServerCert, "CERTIFICATE", srv.Raw)
	der, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.ServerKey, "EC PRIVATE KEY", der)

	cl, clKey := leaf(t, ca, caKey, "phone 1001", nil, x509.ExtKeyUsageClientAuth)
	p.Client = tls.Certificate{Certificate: [][]byte{cl.Raw}, PrivateKey: clKey, Leaf: cl}
	st, stKey := leaf(t, other, otherKey, "stranger", nil, x509.ExtKeyUsageClientAuth)
	p.Stranger = tls.Certificate{Certificate: [][]byte{st.Raw}, PrivateKey: stKey, Leaf: st}
	return p
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func leaf(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, ips []net.IP, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
