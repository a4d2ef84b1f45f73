package media

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzCheck feeds SDP bodies from INVITEs to Check: no panic, and every
// refusal is a *Reject with a reason.
func FuzzCheck(f *testing.F) {
	for _, name := range []string{"softphone-plain-rtp.sdp", "deskphone-sdes.sdp", "webrtc-dtls.sdp"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(body("m=audio 4000 RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+key30+"|2^20|1:4 UNENCRYPTED_SRTP"))
	f.Add(body("a=fingerprint:"+fp256, "m=audio 9 UDP/TLS/RTP/SAVP 0"))
	f.Add([]byte("v=0\r\nm=audio 0 RTP/AVP\r\n"))
	f.Fuzz(func(t *testing.T, offer []byte) {
		err := Policy{}.Check(offer)
		if err == nil {
			return
		}
		var r *Reject
		if !errors.As(err, &r) || r.Reason == "" || r.MLine < 0 || r.MLine > MaxMediaLines {
			t.Fatalf("Check = %#v", err)
		}
	})
}
