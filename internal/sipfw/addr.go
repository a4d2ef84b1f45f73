package sipfw

import (
	"errors"

	"github.com/emiago/sipgo/sip"
)

// errBadAddress marks a request whose Request-URI, From or To cannot be a
// SIP address: a parser as lenient as sipgo's reads
// `<sip:<svg onload=x>@host>` as host "<svg onload=x", and a PBX that parses
// strictly (Kamailio answers nothing, logging "bad to header") would be sent
// what it cannot read.
var errBadAddress = errors.New("request-uri, from or to is not a sip address")

// validAddress reports whether u's user and host could have come from a
// SIP URI (RFC 3261 §25.1): no white space, control characters, quotes or
// angle brackets in the user part (escaped as %XX they pass), and a host of
// letters, digits and the punctuation of names, IPv4 and bracketed IPv6.
// It is deliberately looser than the grammar in the user part, where phones
// send '#' and other unescaped characters PBXs accept.
func validAddress(u *sip.Uri) bool {
	for i := 0; i < len(u.User); i++ {
		if c := u.User[i]; c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '"' {
			return false
		}
	}
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return true // tel has no host; other schemes are answered 416 (§16.3 step 2)
	}
	if u.Host == "" {
		return false
	}
	for i := 0; i < len(u.Host); i++ {
		c := u.Host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// validAddresses checks the Request-URI, From and To of req.
func validAddresses(req *sip.Request) bool {
	return validAddress(&req.Recipient) && validAddress(&req.From().Address) && validAddress(&req.To().Address)
}
