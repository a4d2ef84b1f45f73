package media

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCheck: the policy's cost per INVITE for the three real-shaped
// offers.
func BenchmarkCheck(b *testing.B) {
	for _, name := range []string{"softphone-plain-rtp.sdp", "deskphone-sdes.sdp", "webrtc-dtls.sdp"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Policy{}.Check(data)
			}
		})
	}
}
