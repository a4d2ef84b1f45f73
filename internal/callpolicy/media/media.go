// Package media decides whether an SDP offer protects its media: the
// srtp_required policy accepts an offer only when every audio, video and
// text stream is SRTP keyed by SDES (RFC 4568) with an acceptable suite, or
// by DTLS-SRTP (RFC 5763/5764) with a certificate fingerprint. It reads the
// body with github.com/pion/sdp/v3 and does no I/O.
package media

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Code is the SIP status for an offer the policy refuses: 488 Not
// Acceptable Here (RFC 3261 §21.4.26, RFC 3264 §6: the media offered is
// not acceptable).
const Code = 488

// Limits on the offer. A SIP message over UDP cannot exceed 64 KiB; a
// WebRTC offer with many candidates is under 16 KiB.
const (
	MaxBody       = 64 << 10
	MaxMediaLines = 32
)

// Reject is an offer the policy refuses, with the reason for the 488's
// Warning or Reason header and the m-line (1-based; 0 for the whole offer).
type Reject struct {
	MLine  int
	Reason string
}

// Error renders the reason, with the m-line when there is one.
func (r *Reject) Error() string {
	if r.MLine > 0 {
		return fmt.Sprintf("m-line %d: %s", r.MLine, r.Reason)
	}
	return r.Reason
}

// Suite is an SDES crypto-suite name (RFC 4568 §6.2) with the length of its
// master key plus salt, which the inline key must decode to.
type Suite struct {
	Name       string
	KeySaltLen int
}

// DefaultSuites are the SDES suites srtp_required accepts: AES counter
// mode with HMAC-SHA1 (RFC 4568 §6.2, RFC 6188 for 256-bit keys) and AES-GCM
// (RFC 7714 §14.2). Refused as weak or unprotected: F8_128_HMAC_SHA1_80
// (refused for want of support and review, not a known break), every NULL
// cipher or NULL auth suite, the AES_192 suites (absent from common stacks),
// and any suite not listed here, so an answerer cannot be steered to a
// suite the operator did not choose.
var DefaultSuites = []Suite{
	{"AES_CM_128_HMAC_SHA1_80", 16 + 14},
	{"AES_CM_128_HMAC_SHA1_32", 16 + 14},
	{"AES_256_CM_HMAC_SHA1_80", 32 + 14},
	{"AES_256_CM_HMAC_SHA1_32", 32 + 14},
	{"AEAD_AES_128_GCM", 16 + 12},
	{"AEAD_AES_256_GCM", 32 + 12},
}

// fingerprintLen is the digest length of each accepted a=fingerprint hash
// (RFC 8122 §5). md2 and md5 are refused as broken.
var fingerprintLen = map[string]int{"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}

// Policy is the srtp_required check. The zero Policy uses DefaultSuites.
type Policy struct {
	// Suites overrides DefaultSuites when not empty.
	Suites []Suite
}

// Check returns nil when offer (an SDP body) protects every audio, video
// and text stream, or a *Reject saying why not. Streams with port 0 are
// disabled (RFC 3264 §5.1) and not judged, unless marked a=bundle-only.
// Application (data channel) and message (MSRP) streams are not judged
// either. The parser refuses media types it does not know, such as image
// (T.38), so such offers are refused as malformed. An empty body is
// refused: with a late offer the media would be agreed after the guard has
// let the call through.
func (p Policy) Check(offer []byte) error {
	switch {
	case len(offer) == 0:
		return &Reject{Reason: "no SDP offer; srtp_required needs the offer in the INVITE"}
	case len(offer) > MaxBody:
		return &Reject{Reason: fmt.Sprintf("SDP offer of %d bytes is over %d", len(offer), MaxBody)}
	}
	if n := bytes.Count(offer, []byte("\nm=")); n > MaxMediaLines {
		return &Reject{Reason: "too many m-lines"}
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(offer); err != nil {
		return &Reject{Reason: "malformed SDP: " + quote(err.Error())}
	}
	if len(sd.MediaDescriptions) == 0 {
		return &Reject{Reason: "SDP offer has no media"}
	}
	if len(sd.MediaDescriptions) > MaxMediaLines {
		return &Reject{Reason: fmt.Sprintf("SDP offer has %d m-lines, over %d", len(sd.MediaDescriptions), MaxMediaLines)}
	}
	sessionFP, err := fingerprints(sd.Attributes)
	if err != nil {
		return &Reject{Reason: "session " + err.Error()}
	}
	judged := 0
	for i, md := range sd.MediaDescriptions {
		switch strings.ToLower(md.MediaName.Media) {
		case "audio", "video", "text":
		default:
			continue
		}
		if md.MediaName.Port.Value == 0 && !bundleOnly(md.Attributes) {
			continue
		}
		judged++
		if err := p.checkStream(md, sessionFP); err != nil {
			return &Reject{MLine: i + 1, Reason: md.MediaName.Media + ": " + err.Error()}
		}
	}
	if judged == 0 {
		return &Reject{Reason: "SDP offer has no active audio or video stream"}
	}
	return nil
}

func (p Policy) checkStream(md *sdp.MediaDescription, sessionFP int) error {
	proto := strings.ToUpper(strings.Join(md.MediaName.Protos, "/"))
	switch proto {
	case "RTP/SAVP", "RTP/SAVPF":
		return p.checkSDES(md.Attributes)
	case "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF", "TCP/TLS/RTP/SAVP", "TCP/TLS/RTP/SAVPF":
		n, err := fingerprints(md.Attributes)
		if err != nil {
			return err
		}
		if n+sessionFP == 0 {
			return fmt.Errorf("%s without a=fingerprint: DTLS-SRTP needs the certificate fingerprint", proto)
		}
		return nil
	case "RTP/AVP", "RTP/AVPF":
		for _, a := range md.Attributes {
			if a.Key == "crypto" {
				return fmt.Errorf("%s with a=crypto is best-effort SRTP and may be answered in plain RTP; offer RTP/SAVP", proto)
			}
		}
		return fmt.Errorf("%s is plain RTP; SRTP is required (RTP/SAVP with a=crypto, or DTLS-SRTP)", proto)
	}
	return fmt.Errorf("transport %s is not SRTP", quote(proto))
}

// checkSDES wants at least one a=crypto line and every one acceptable, so
// the answerer cannot pick a weak alternative.
func (p Policy) checkSDES(attrs []sdp.Attribute) error {
	suites := p.Suites
	if len(suites) == 0 {
		suites = DefaultSuites
	}
	n := 0
	for _, a := range attrs {
		if a.Key != "crypto" {
			continue
		}
		n++
		if err := checkCrypto(a.Value, suites); err != nil {
			return fmt.Errorf("a=crypto %d: %w", n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("RTP/SAVP without a=crypto: no SRTP keys offered")
	}
	return nil
}

// checkCrypto checks one a=crypto value: "tag suite key-params
// [session-params]" (RFC 4568 §9.1).
func checkCrypto(v string, suites []Suite) error {
	f := strings.Fields(v)
	if len(f) < 3 {
		return fmt.Errorf("want tag, suite and key parameters")
	}
	if tag, err := strconv.Atoi(f[0]); err != nil || tag < 0 || len(f[0]) > 9 {
		return fmt.Errorf("tag %s is not a number", quote(f[0]))
	}
	var suite *Suite
	for i := range suites {
		if strings.EqualFold(suites[i].Name, f[1]) {
			suite = &suites[i]
		}
	}
	if suite == nil {
		return fmt.Errorf("suite %s is not accepted", quote(f[1]))
	}
	for _, kp := range strings.Split(f[2], ";") {
		key, ok := strings.CutPrefix(kp, "inline:")
		if !ok {
			return fmt.Errorf("key method is not inline")
		}
		key, _, _ = strings.Cut(key, "|") // lifetime and MKI follow
		raw, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			if raw, err = base64.RawStdEncoding.DecodeString(key); err != nil {
				return fmt.Errorf("key is not base64")
			}
		}
		if len(raw) != suite.KeySaltLen {
			return fmt.Errorf("%s key and salt are %d bytes, want %d", suite.Name, len(raw), suite.KeySaltLen)
		}
	}
	// RFC 4568 §6.3.2: these session parameters switch protection off.
	for _, sp := range f[3:] {
		switch strings.ToUpper(sp) {
		case "UNENCRYPTED_SRTP", "UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP":
			return fmt.Errorf("session parameter %s turns protection off", strings.ToUpper(sp))
		}
	}
	return nil
}

// fingerprints counts the a=fingerprint lines in attrs and checks each is
// "hash-func hex:pairs" with an accepted hash of the right length.
func fingerprints(attrs []sdp.Attribute) (int, error) {
	n := 0
	for _, a := range attrs {
		if a.Key != "fingerprint" {
			continue
		}
		n++
		hash, value, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		if !ok {
			return n, fmt.Errorf("a=fingerprint %s: want hash function and value", quote(a.Value))
		}
		want, ok := fingerprintLen[strings.ToLower(hash)]
		if !ok {
			return n, fmt.Errorf("a=fingerprint hash %s is not accepted (sha-1 to sha-512)", quote(hash))
		}
		raw, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(value), ":", ""))
		if err != nil || len(raw) != want {
			return n, fmt.Errorf("a=fingerprint %s value is not %d hex bytes", hash, want)
		}
	}
	return n, nil
}

// bundleOnly reports a=bundle-only: port 0 then means "carried on the
// BUNDLE group's transport" (RFC 8843 §6), not "disabled", so the stream is
// judged like an active one.
func bundleOnly(attrs []sdp.Attribute) bool {
	for _, a := range attrs {
		if a.Key == "bundle-only" {
			return true
		}
	}
	return false
}

// quote quotes attacker text and caps it, for a reason that ends up in a
// SIP header and a log line.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}
