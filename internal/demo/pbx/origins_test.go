package pbx

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestOrigin(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		want netip.Addr
	}{
		{"direct", "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.40.0.2:5071;branch=z9hG4bKa\r\n", netip.MustParseAddr("127.40.0.2")},
		{"through a proxy", "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bKb\r\nVia: SIP/2.0/UDP 127.41.0.3:5072;branch=z9hG4bKa;rport=5072\r\n", netip.MustParseAddr("127.41.0.3")},
		{"one header, two values", "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.5:5060;branch=z9hG4bKb, SIP/2.0/UDP 127.42.0.4;branch=z9hG4bKa\r\n", netip.MustParseAddr("127.42.0.4")},
		{"host name", "OPTIONS sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP phone.example;branch=z9hG4bKa\r\n", netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.msg + "From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
			m, err := sip.ParseMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			if got := origin(m.(*sip.Request)); got != tc.want {
				t.Errorf("origin = %v, want %v", got, tc.want)
			}
		})
	}
}
