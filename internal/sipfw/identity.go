package sipfw

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// compactForms maps a header's full name to its compact form (RFC 3261
// §7.3.3 and the IANA SIP header registry), both lower case, so a stripped
// header cannot come back in its short spelling.
var compactForms = map[string]string{
	"accept-contact": "a", "referred-by": "b", "content-type": "c", "request-disposition": "d",
	"content-encoding": "e", "from": "f", "call-id": "i", "reject-contact": "j", "supported": "k",
	"content-length": "l", "contact": "m", "identity-info": "n", "event": "o", "refer-to": "r",
	"subject": "s", "to": "t", "allow-events": "u", "via": "v", "session-expires": "x", "identity": "y",
}

// unstrippable are headers a request cannot be routed or answered without.
var unstrippable = []string{"via", "from", "to", "call-id", "cseq", "max-forwards", "route",
	"record-route", "contact", "content-length", "content-type", "path"}

// ValidateStripHeader reports why name cannot be in sip.strip_headers: it
// is not a header name token (RFC 3261 §25.1) or the proxy needs it.
func ValidateStripHeader(name string) error {
	if name == "" {
		return fmt.Errorf("empty header name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return fmt.Errorf("%q is not a header name", name)
		}
	}
	l := strings.ToLower(name)
	for _, u := range unstrippable {
		if l == u || compactForms[u] == l {
			return fmt.Errorf("%q is needed to route the request and cannot be stripped", name)
		}
	}
	return nil
}

// stripSet is the lower-case set of names stripHeaders removes: names, their
// compact forms, and always X-AUTH-IP and X-AUTH-PORT.
func stripSet(names []string) (map[string]bool, error) {
	set := map[string]bool{"x-auth-ip": true, "x-auth-port": true}
	for _, n := range names {
		if err := ValidateStripHeader(n); err != nil {
			return nil, fmt.Errorf("strip_headers: %w", err)
		}
		l := strings.ToLower(n)
		set[l] = true
		if c, ok := compactForms[l]; ok {
			set[c] = true
		}
	}
	return set, nil
}

// stripHeaders removes every header of req whose lower-case name is in set.
// Attacker-supplied identity never reaches the PBX, which may trust what
// comes from its proxy.
func stripHeaders(req *sip.Request, set map[string]bool) {
	for {
		found := ""
		for _, h := range req.Headers() {
			if n := h.Name(); inSetFold(set, n) {
				found = n
				break
			}
		}
		if found == "" {
			return
		}
		req.RemoveHeader(found)
	}
}

// inSetFold reports whether name, lower-cased, is in set, without
// allocating (the map lookup of a converted byte slice does not copy).
func inSetFold(set map[string]bool, name string) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		return set[strings.ToLower(name)]
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return set[string(b)]
}

// markReceived writes where the request really came from into its top Via:
// received and rport, always (RFC 3581 §4: with rport, received is added
// even when it equals the sent-by host; RFC 3261 §18.2.1). Whatever
// received or rport the client wrote is removed first, in any letter case:
// a client names its own sent-by, never where the proxy saw it.
func markReceived(v *sip.ViaHeader, src netip.AddrPort) {
	if v.Params == nil {
		v.Params = sip.NewParams()
	}
	kept := v.Params[:0]
	for _, kv := range v.Params {
		if strings.EqualFold(kv.K, "received") || strings.EqualFold(kv.K, "rport") {
			continue
		}
		kept = append(kept, kv)
	}
	v.Params = kept
	v.Params.Add("received", src.Addr().String())
	v.Params.Add("rport", strconv.Itoa(int(src.Port())))
}
