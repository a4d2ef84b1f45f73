package freeswitch

import (
	"github.com/tollguard/tollguard/internal/freeswitch/esltest"
	"strings"
	"testing"
)

// BenchmarkParseAndMap measures the sidecar's hot path on one core: frame,
// parse and map a realistic mix (a register_attempt + register_failure
// pair and a call's three channel events), as read from the socket.
func BenchmarkParseAndMap(b *testing.B) {
	uuid := "37e9b766-5256-4e4b-b1ed-3767b930fec8"
	mix := []string{
		esltest.RegisterAttempt("1001", "1001", "198.51.100.7", "5071", "friendly-scanner", "FORBIDDEN"),
		esltest.RegisterFailure("1001", "198.51.100.7", "5071", "friendly-scanner", "REGISTER"),
		esltest.ChannelEvent("CHANNEL_CREATE", uuid),
		esltest.ChannelEvent("CHANNEL_ANSWER", uuid),
		esltest.ChannelEvent("CHANNEL_HANGUP_COMPLETE", uuid),
	}
	var buf strings.Builder
	for _, e := range mix {
		buf.WriteString(esltest.FrameEvent(e))
	}
	stream := []byte(buf.String())
	m := NewMapper()
	rd := NewReader(&cycle{b: stream})
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)) / int64(len(mix)))
	n := 0
	for b.Loop() {
		f, err := rd.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		ev, err := ParsePlain(f.Body)
		if err != nil {
			b.Fatal(err)
		}
		m.Map(ev)
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
}

// cycle reads b over and over, like a socket that never runs dry.
type cycle struct {
	b   []byte
	off int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.b[c.off:])
	c.off = (c.off + n) % len(c.b)
	return n, nil
}
