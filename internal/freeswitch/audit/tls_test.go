package audit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeCert(t *testing.T, path string, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pbx.example.com"}, NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	// agent.pem holds the key first, then the certificate.
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTLSCertificates(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		params []string
		certs  map[string]time.Time // path under the tree → NotAfter
		want   string
	}{
		{"expired agent.pem in tls-cert-dir", []string{"auth-calls", "true", "tls", "true", "tls-cert-dir", "certs"}, map[string]time.Time{"certs/agent.pem": now.Add(-time.Hour)}, "tls-expired"},
		{"expiring wss.pem in the default dir", []string{"auth-calls", "true", "wss-binding", ":7443"}, map[string]time.Time{"tls/wss.pem": now.Add(10 * 24 * time.Hour)}, "tls-expiring"},
		{"valid tls.pem", []string{"auth-calls", "true", "tls", "TRUE"}, map[string]time.Time{"tls/tls.pem": now.Add(200 * 24 * time.Hour)}, ""},
		{"tls on, no certificate", []string{"auth-calls", "true", "tls", "yes"}, nil, "tls-self-signed"},
		{"tls off, expired file ignored", []string{"auth-calls", "true", "tls", "false"}, map[string]time.Time{"tls/agent.pem": now.Add(-time.Hour)}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tree(t, map[string]string{"vars.xml": "", "sip_profiles/internal.xml": profile("internal", tc.params...)})
			for p, na := range tc.certs {
				writeCert(t, filepath.Join(dir, p), na)
			}
			r, err := Run(dir, Options{Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if got := rules(r); got != tc.want {
				t.Errorf("rules %q, want %q: %+v", got, tc.want, r.Findings)
			}
		})
	}
}
