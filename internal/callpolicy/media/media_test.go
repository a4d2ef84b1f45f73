package media

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	key30 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e"                         // AES_CM_128: 16 key + 14 salt
	key28 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHA=="                         // AEAD_AES_128_GCM: 16 + 12
	key44 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKyw="     // AEAD_AES_256_GCM: 32 + 12
	key46 = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLg==" // AES_256_CM: 32 + 14
	fp256 = "sha-256 64:65:66:67:68:69:6A:6B:6C:6D:6E:6F:70:71:72:73:74:75:76:77:78:79:7A:7B:7C:7D:7E:7F:80:81:82:83"
)

func body(lines ...string) []byte {
	head := []string{"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0"}
	return []byte(strings.Join(append(head, lines...), "\r\n") + "\r\n")
}

func TestRealOffers(t *testing.T) {
	tests := []struct {
		file   string
		ok     bool
		reason string
	}{
		{"softphone-plain-rtp.sdp", false, "RTP/AVP is plain RTP"},
		{"deskphone-sdes.sdp", true, ""},
		{"webrtc-dtls.sdp", true, ""},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			err = Policy{}.Check(data)
			if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.reason)) {
				t.Errorf("Check = %v, want ok=%v %q", err, tc.ok, tc.reason)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	savp := func(crypto ...string) []string {
		l := []string{"m=audio 4000 RTP/SAVP 0 8"}
		for _, c := range crypto {
			l = append(l, "a=crypto:"+c)
		}
		return l
	}
	join := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name   string
		offer  []byte
		mline  int
		reason string // "" means accepted
	}{
		{"SDES 80", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30)...), 0, ""},
		{"SDES 32 with lifetime and MKI", body(savp("1 AES_CM_128_HMAC_SHA1_32 inline:" + key30 + "|2^20|1:4")...), 0, ""},
		{"SDES GCM 128", body(savp("1 AEAD_AES_128_GCM inline:" + key28)...), 0, ""},
		{"SDES GCM 256", body(savp("1 AEAD_AES_256_GCM inline:" + key44)...), 0, ""},
		{"SDES AES-256 CM", body(savp("1 AES_256_CM_HMAC_SHA1_80 inline:" + key46)...), 0, ""},
		{"SAVPF", body("m=video 4002 RTP/SAVPF 96", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), 0, ""},
		{"two keys in one line", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30)...), 0, ""},
		{"DTLS media-level fingerprint", body("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=fingerprint:"+fp256, "a=setup:actpass"), 0, ""},
		{"DTLS session-level fingerprint", body("a=fingerprint:"+fp256, "m=audio 9 UDP/TLS/RTP/SAVP 0"), 0, ""},
		{"DTLS over TCP", body("m=audio 9 TCP/TLS/RTP/SAVPF 111", "a=fingerprint:"+fp256), 0, ""},
		{"disabled plain stream beside a secure one", body(join(savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), []string{"m=video 0 RTP/AVP 96"})...), 0, ""},
		{"LF line endings", []byte("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\n"), 0, ""},
		{"lower-case suite", body("m=audio 4000 RTP/SAVP 0", "a=crypto:1 aes_cm_128_hmac_sha1_80 inline:"+key30), 0, ""},

		{"plain RTP", body("m=audio 4000 RTP/AVP 0 8"), 1, "plain RTP"},
		{"best-effort SRTP over AVP", body("m=audio 4000 RTP/AVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), 1, "best-effort"},
		{"secure audio, plain video", body(join(savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), []string{"m=video 4002 RTP/AVP 96"})...), 2, "plain RTP"},
		{"plain audio first, secure second", body(join([]string{"m=audio 4002 RTP/AVP 0"}, savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+key30))...), 1, "plain RTP"},
		{"SAVP without crypto", body("m=audio 4000 RTP/SAVP 0"), 1, "without a=crypto"},
		{"crypto at session level only", body("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30, "m=audio 4000 RTP/SAVP 0"), 1, "without a=crypto"},
		{"NULL cipher", body(savp("1 NULL_HMAC_SHA1_80 inline:" + key30)...), 1, "not accepted"},
		{"NULL auth", body(savp("1 AES_CM_128_NULL_AUTH inline:" + key30)...), 1, "not accepted"},
		{"F8", body(savp("1 F8_128_HMAC_SHA1_80 inline:" + key30)...), 1, "not accepted"},
		{"one good one weak", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+key30, "2 NULL_HMAC_SHA1_80 inline:"+key30)...), 1, "a=crypto 2"},
		{"UNENCRYPTED_SRTP", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP")...), 1, "turns protection off"},
		{"UNAUTHENTICATED_SRTP", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=1 UNAUTHENTICATED_SRTP")...), 1, "turns protection off"},
		{"short key", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:AQIDBAUGBwgJCgsMDQ4PEA==")...), 1, "want 30"},
		{"GCM key for CM suite", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:" + key28)...), 1, "want 30"},
		{"key not base64", body(savp("1 AES_CM_128_HMAC_SHA1_80 inline:!!!!")...), 1, "not base64"},
		{"key method not inline", body(savp("1 AES_CM_128_HMAC_SHA1_80 uri:https://example.com/key")...), 1, "not inline"},
		{"crypto missing key", body(savp("1 AES_CM_128_HMAC_SHA1_80")...), 1, "want tag"},
		{"crypto bad tag", body(savp("x AES_CM_128_HMAC_SHA1_80 inline:" + key30)...), 1, "not a number"},
		{"DTLS without fingerprint", body("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=setup:actpass"), 1, "without a=fingerprint"},
		{"DTLS md5 fingerprint", body("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=fingerprint:md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"), 1, "not accepted"},
		{"DTLS short fingerprint", body("m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=fingerprint:sha-256 64:65"), 1, "not 32 hex bytes"},
		{"bad session fingerprint", body("a=fingerprint:sha-256 zz", "m=audio 9 UDP/TLS/RTP/SAVPF 111"), 0, "session a=fingerprint"},
		{"SAVP with fingerprint but no crypto", body("m=audio 4000 RTP/SAVP 0", "a=fingerprint:"+fp256), 1, "without a=crypto"},
		{"unknown transport", body("m=audio 4000 RTP/XYZ 0"), 0, "malformed SDP"},
		{"DTLS/SCTP on an audio line", body("m=audio 9 UDP/DTLS/SCTP webrtc-datachannel", "a=fingerprint:"+fp256), 1, "is not SRTP"},
		// pion/sdp refuses media types outside audio, video, text,
		// application and message: a T.38 offer fails closed.
		{"T.38 beside secure audio", body(join(savp("1 AES_CM_128_HMAC_SHA1_80 inline:"+key30), []string{"m=image 4004 udptl t38"})...), 0, "malformed SDP"},
		{"bundle-only plain stream is judged", body("a=group:BUNDLE 0 1", "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=fingerprint:"+fp256, "a=mid:0", "m=video 0 RTP/AVP 96", "a=bundle-only", "a=mid:1"), 2, "plain RTP"},
		{"bundle-only secure stream", body("a=group:BUNDLE 0 1", "a=fingerprint:"+fp256, "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "m=video 0 UDP/TLS/RTP/SAVPF 96", "a=bundle-only", "a=mid:1"), 0, ""},
		{"only disabled streams", body("m=audio 0 RTP/SAVP 0"), 0, "no active audio"},
		{"only data channel", body("m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=fingerprint:"+fp256), 0, "no active audio"},
		{"no media", body(), 0, "no media"},
		{"empty body", nil, 0, "no SDP offer"},
		{"not SDP", []byte("hello"), 0, "malformed SDP"},
		{"huge", append(body("m=audio 4000 RTP/AVP 0"), []byte(strings.Repeat("a=x:y\r\n", MaxBody/7+1))...), 0, "over 65536"},
		{"many m-lines", body(strings.Repeat("m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"\r\n", MaxMediaLines+1)), 0, "m-lines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Policy{}.Check(tc.offer)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("Check = %v, want accepted", err)
				}
				return
			}
			var r *Reject
			if !errors.As(err, &r) {
				t.Fatalf("Check = %v, want *Reject %q", err, tc.reason)
			}
			if r.MLine != tc.mline || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("Check = m-line %d %q, want m-line %d containing %q", r.MLine, r.Reason, tc.mline, tc.reason)
			}
		})
	}
}

func TestCustomSuites(t *testing.T) {
	p := Policy{Suites: []Suite{{"AEAD_AES_256_GCM", 44}}}
	if err := p.Check(body("m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30)); err == nil {
		t.Error("suite outside the configured list accepted")
	}
	if err := p.Check(body("m=audio 4000 RTP/SAVP 0", "a=crypto:1 AEAD_AES_256_GCM inline:"+key44)); err != nil {
		t.Errorf("configured suite: %v", err)
	}
}

func TestReasonQuotedAndCapped(t *testing.T) {
	err := Policy{}.Check(body("m=audio 4000 RTP/SAVP 0", "a=crypto:1 "+strings.Repeat("\x01X", 200)+" inline:"+key30))
	if err == nil {
		t.Fatal("accepted")
	}
	if len(err.Error()) > 250 || strings.ContainsRune(err.Error(), '\x01') {
		t.Errorf("reason not capped or not quoted: %q", err.Error())
	}
}
