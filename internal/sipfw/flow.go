package sipfw

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/netip"
	"strconv"
	"strings"
	"sync"
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

// flowMACLen is how many bytes of the HMAC-SHA256 a token carries: 80 bits
// is out of reach of online guessing, where every wrong guess is a counted
// drop, and keeps the token short enough for a URI user part.
const flowMACLen = 10

// FlowKeyLen is the length of the key that authenticates flow tokens.
const FlowKeyLen = 32

// flowCodec makes and checks flow tokens. A token names where a message
// must go back to; the MAC proves this proxy minted it, so neither a forged
// response from outside nor a PBX fed a forged Path can make the proxy send
// to an address of an attacker's choosing.
type flowCodec struct {
	macs sync.Pool // hash.Hash, keyed
}

func newFlowCodec(key []byte) *flowCodec {
	k := append([]byte(nil), key...)
	c := &flowCodec{}
	c.macs.New = func() any { return hmac.New(sha256.New, k) }
	return c
}

// randomFlowKey returns a fresh key, for a proxy without a persisted one.
func randomFlowKey() ([]byte, error) {
	k := make([]byte, FlowKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generating flow key: %w", err)
	}
	return k, nil
}

// mac appends the truncated MAC of body to out.
func (c *flowCodec) mac(out []byte, body []byte) []byte {
	h := c.macs.Get().(hash.Hash)
	h.Reset()
	h.Write(body)
	var sum [sha256.Size]byte
	s := h.Sum(sum[:0])
	c.macs.Put(h)
	return hex.AppendEncode(out, s[:flowMACLen])
}

// encode renders f as a token that is valid both as the user part of a SIP
// URI and as a Via parameter value (RFC 3261 §25.1: unreserved characters
// only): "tg.<listener index>.<hex address>.<port>.<hex MAC>".
func (c *flowCodec) encode(f flow) string {
	var b [96]byte
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
	body := len(out)
	out = append(out, '.')
	out = c.mac(out, out[:body])
	return string(out)
}

// decode checks a token made by encode against the proxy's listeners. It
// reports false for anything else: a token altered in any byte, minted
// under another key, or naming a listener that does not exist.
func (c *flowCodec) decode(tok string, lis []*listener) (flow, bool) {
	t, ok := parseFlowToken(tok)
	if !ok || t.idx >= len(lis) {
		return flow{}, false
	}
	var want [flowMACLen * 2]byte
	if !hmac.Equal(c.mac(want[:0], []byte(t.body)), []byte(t.mac)) {
		return flow{}, false
	}
	return flow{lis: lis[t.idx], remote: t.remote}, true
}

// flowToken is a syntactically valid token, not yet authenticated.
type flowToken struct {
	idx    int
	remote netip.AddrPort
	body   string // what the MAC covers
	mac    string // hex, lower case
}

// parseFlowToken splits a token into its parts. It checks syntax only; the
// caller must check the MAC.
func parseFlowToken(tok string) (flowToken, bool) {
	if len(tok) > 96 {
		return flowToken{}, false
	}
	rest, ok := strings.CutPrefix(tok, flowPrefix)
	if !ok {
		return flowToken{}, false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return flowToken{}, false
	}
	mac := rest[dot+1:]
	body := tok[:len(flowPrefix)+dot]
	rest = rest[:dot]
	if len(mac) != flowMACLen*2 || strings.ToLower(mac) != mac {
		return flowToken{}, false
	}
	idxS, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return flowToken{}, false
	}
	addrS, portS, ok := strings.Cut(rest, ".")
	if !ok {
		return flowToken{}, false
	}
	idx, err := strconv.Atoi(idxS)
	if err != nil || idx < 0 || idx > 1024 || strconv.Itoa(idx) != idxS {
		return flowToken{}, false
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil || port == 0 {
		return flowToken{}, false
	}
	var raw [16]byte
	if len(addrS) != 8 && len(addrS) != 32 {
		return flowToken{}, false
	}
	n, err := hex.Decode(raw[:], []byte(addrS))
	if err != nil {
		return flowToken{}, false
	}
	var a netip.Addr
	switch n {
	case 4:
		a = netip.AddrFrom4([4]byte(raw[:4]))
	case 16:
		a = netip.AddrFrom16(raw).Unmap()
	default:
		return flowToken{}, false
	}
	return flowToken{idx: idx, remote: netip.AddrPortFrom(a, uint16(port)), body: body, mac: mac}, true
}
