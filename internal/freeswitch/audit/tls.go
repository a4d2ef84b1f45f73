package audit

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// maxCertFile bounds a certificate file read.
const maxCertFile = 1 << 20

// tls checks the certificates of a profile with TLS or WSS on. Sofia reads
// agent.pem (with cafile.pem) or tls.pem from tls-cert-dir, and wss.pem for
// WSS, generating a self-signed tls.pem when none exists (sofia.c,
// config_sofia_profile, switch_core_gen_certs).
func (a *auditor) tls(p *Profile, subj string) {
	on, _ := p.Flag("tls", false)
	_, wss := p.Last("wss-binding")
	if !on && !wss {
		return
	}
	dir := filepath.Join(a.dir, "tls")
	at := Param{File: p.File, Line: p.Line}
	if x, ok := p.Last("tls-cert-dir"); ok && x.Value != "" {
		dir, at = x.Value, x
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(a.dir, dir)
		}
	}
	names := []string{"agent.pem", "tls.pem"}
	if wss {
		names = append(names, "wss.pem")
	}
	found := false
	for _, n := range names {
		path := filepath.Join(dir, n)
		cert, err := readCert(path)
		if err != nil {
			if !os.IsNotExist(err) {
				a.add(Finding{Rule: "tls-cert", Severity: Medium, File: at.File, Line: at.Line, Subject: subj, Message: fmt.Sprintf("%s: %v", n, err),
					Why: "a certificate FreeSWITCH cannot load leaves TLS phones unable to connect, and operators fall back to plain SIP",
					Fix: "install a valid PEM certificate and key"})
			}
			continue
		}
		found = true
		left := cert.NotAfter.Sub(a.o.Now)
		switch {
		case left <= 0:
			a.add(Finding{Rule: "tls-expired", Severity: High, File: at.File, Line: at.Line, Subject: subj, Message: fmt.Sprintf("%s expired on %s", n, cert.NotAfter.UTC().Format(time.DateOnly)),
				Why: "phones that verify refuse to connect and get moved to plain SIP, where passwords' digests and calls travel in the clear",
				Fix: "renew the certificate and restart the profile"})
		case left < 30*24*time.Hour:
			a.add(Finding{Rule: "tls-expiring", Severity: Medium, File: at.File, Line: at.Line, Subject: subj, Message: fmt.Sprintf("%s expires on %s", n, cert.NotAfter.UTC().Format(time.DateOnly)),
				Why: "once expired, phones that verify refuse to connect and get moved to plain SIP",
				Fix: "renew the certificate before it expires"})
		}
	}
	if !found {
		a.add(Finding{Rule: "tls-self-signed", Severity: Low, File: at.File, Line: at.Line, Subject: subj, Message: "TLS is on but " + filepath.Base(dir) + " holds no certificate, so FreeSWITCH generates a self-signed one",
			Why: "phones that verify cannot connect; phones that do not verify accept any impostor in the middle",
			Fix: "install a certificate from a CA your phones trust as agent.pem (and cafile.pem) or tls.pem"})
	}
}

// readCert returns the first certificate in a PEM file.
func readCert(path string) (*x509.Certificate, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxCertFile {
		return nil, fmt.Errorf("not a regular file under 1 MiB")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("no certificate in the file")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}
