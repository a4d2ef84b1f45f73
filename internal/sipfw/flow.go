package sipfw

import (
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"
)

// flow is one hop's return path: the listener a message arrived on and the
// peer's address on it. For stream transports the peer's address names the
// connection in the proxy's connection table (RFC 5626 §3 calls this a flow).
type flow struct {
	lis    *listener
	remote netip.AddrPort
}

// flowPrefix starts every flow token, so a token is told from a user name.
const flowPrefix = "tg."

// encodeFlow renders f as a token that is valid both as the user part of a
// SIP URI and as a Via parameter value (RFC 3261 §25.1: unreserved
// characters only): "tg.<listener index>.<hex address>.<port>".
func encodeFlow(f flow) string {
	var b [64]byte
	out := append(b[:0], flowPrefix...)
	out = strconv.AppendInt(out, int64(f.lis.idx), 10)
	out = append(out, '.')
	a := f.remote.Addr().Unmap()
	if a.Is4() {
		v := a.As4()
		out = hex.AppendEncode(out, v[:])
	} else {
		v := a.As16()
		out = hex.AppendEncode(out, v[:])
	}
	out = append(out, '.')
	out = strconv.AppendUint(out, uint64(f.remote.Port()), 10)
	return string(out)
}

// decodeFlow parses a token made by encodeFlow against the proxy's
// listeners. It reports false for anything else.
func decodeFlow(tok string, lis []*listener) (flow, bool) {
	rest, ok := strings.CutPrefix(tok, flowPrefix)
	if !ok {
		return flow{}, false
	}
	idxS, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return flow{}, false
	}
	addrS, portS, ok := strings.Cut(rest, ".")
	if !ok {
		return flow{}, false
	}
	idx, err := strconv.Atoi(idxS)
	if err != nil || idx < 0 || idx >= len(lis) {
		return flow{}, false
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil || port == 0 {
		return flow{}, false
	}
	var raw [16]byte
	n, err := hex.Decode(raw[:], []byte(addrS))
	if err != nil {
		return flow{}, false
	}
	var a netip.Addr
	switch n {
	case 4:
		a = netip.AddrFrom4([4]byte(raw[:4]))
	case 16:
		a = netip.AddrFrom16(raw).Unmap()
	default:
		return flow{}, false
	}
	return flow{lis: lis[idx], remote: netip.AddrPortFrom(a, uint16(port))}, true
}
