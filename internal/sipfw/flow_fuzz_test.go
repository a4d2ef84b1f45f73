package sipfw

import (
	"net/netip"
	"testing"
)

// FuzzFlowToken feeds arbitrary text to the flow-token parser and
// verifier: it must never panic, must accept a token only when it is one
// the codec minted, and a parsed token must re-encode to itself.
func FuzzFlowToken(f *testing.F) {
	ls := []*listener{{idx: 0, network: "udp"}, {idx: 1, network: "tcp"}, {idx: 2, network: "tls"}}
	c := newFlowCodec([]byte("0123456789abcdef0123456789abcdef"))
	for _, ap := range []string{"127.0.0.1:5060", "[2001:db8::1]:5061", "[::ffff:10.0.0.1]:1"} {
		f.Add(c.encode(flow{lis: ls[1], remote: netip.MustParseAddrPort(ap)}))
	}
	f.Add("tg.0.7f000001.5060")
	f.Add("tg.0.7f000001.5060.00000000000000000000")
	f.Add("tg..7f000001.5060.")
	f.Add("1001")
	f.Fuzz(func(t *testing.T, tok string) {
		if pt, ok := parseFlowToken(tok); ok {
			if pt.idx < 0 || !pt.remote.IsValid() || pt.remote.Port() == 0 || pt.remote.Addr().Is4In6() {
				t.Fatalf("parsed %q into %+v", tok, pt)
			}
		}
		fl, ok := c.decode(tok, ls)
		if !ok {
			return
		}
		if again := c.encode(fl); again != tok {
			t.Fatalf("accepted %q, which re-encodes as %q", tok, again)
		}
	})
}
