package sipfw

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
)

// maxField caps every string the tap copies out of a message, so one event
// never holds more than a few KB of attacker text.
const maxField = 256

// capField truncates s to maxField bytes.
func capField(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

// quote renders attacker text for a log line.
func quote(s string) string { return strconv.Quote(s) }

// extractSIP fills s from req: the fields the engine and the store use.
// Every string is capped at maxField bytes.
func extractSIP(req *sip.Request, s *event.SIP) {
	s.Method = capField(string(req.Method))
	s.RURIUser = capField(req.Recipient.User)
	if h := req.CallID(); h != nil {
		s.CallID = capField(string(*h))
	}
	if h := req.From(); h != nil {
		s.FromUser = capField(h.Address.User)
		s.FromName = capField(h.DisplayName)
	}
	if h := req.To(); h != nil {
		s.ToUser = capField(h.Address.User)
	}
	if h := req.Contact(); h != nil {
		if v, ok := h.Params.Get("+sip.instance"); ok {
			s.Instance = capField(strings.Trim(v, `"<>`))
		}
	}
	for _, h := range req.Headers() {
		name := h.Name()
		switch {
		case strings.EqualFold(name, "User-Agent"):
			s.UserAgent = capField(h.Value())
		case strings.EqualFold(name, "Authorization"), strings.EqualFold(name, "Proxy-Authorization"):
			s.HasCredentials = true
			if s.AuthUser == "" {
				s.AuthUser = capField(digestParam(h.Value(), "username"))
			}
		case name == "Via":
			if len(s.Path) < 8 {
				v := h.(*sip.ViaHeader)
				s.Path = append(s.Path, capField(v.Transport+" "+v.SentBy()))
			}
		}
	}
}

// maxSDP caps the SDP body handed to the Checker: a SIP message over UDP
// cannot exceed 64 KiB, and the media policy refuses longer offers.
const maxSDP = 64 << 10

// extractCall adds what only call rules read to an initial INVITE's s:
// the call token header's value (tokenHeader, when set) and the SDP
// offer. The body is not copied: the event shares the request's memory
// and the proxy never changes a body.
func extractCall(req *sip.Request, s *event.SIP, tokenHeader string) {
	if tokenHeader != "" {
		for _, h := range req.Headers() {
			if strings.EqualFold(h.Name(), tokenHeader) {
				s.Token = capField(h.Value())
				break
			}
		}
	}
	if b := req.Body(); len(b) > 0 && len(b) <= maxSDP {
		if ct := req.ContentType(); ct != nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct.Value())), "application/sdp") {
			s.SDP = b
		}
	}
}

// digestParam returns a parameter of a Digest credentials or challenge
// value (RFC 7616 §3.4), unquoted; "" when absent.
func digestParam(v, name string) string {
	for len(v) > 0 {
		i := indexFold(v, name)
		if i < 0 {
			return ""
		}
		// The name must start a parameter: preceded by start, space or comma.
		if i > 0 && v[i-1] != ' ' && v[i-1] != ',' && v[i-1] != '\t' {
			v = v[i+len(name):]
			continue
		}
		rest := strings.TrimLeft(v[i+len(name):], " \t")
		if !strings.HasPrefix(rest, "=") {
			v = v[i+len(name):]
			continue
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return rest[1:]
			}
			return rest[1 : 1+end]
		}
		end := strings.IndexAny(rest, ", \t")
		if end < 0 {
			return rest
		}
		return rest[:end]
	}
	return ""
}

// indexFold is strings.Index ignoring ASCII case.
func indexFold(s, sub string) int {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return i
		}
	}
	return -1
}

// isStale reports whether a 401/407 carries a challenge with stale=true
// (RFC 7616 §3.3): the nonce expired, the credentials were right.
func isStale(res *sip.Response) bool {
	for _, h := range res.Headers() {
		name := h.Name()
		if strings.EqualFold(name, "WWW-Authenticate") || strings.EqualFold(name, "Proxy-Authenticate") {
			if strings.EqualFold(digestParam(h.Value(), "stale"), "true") {
				return true
			}
		}
	}
	return false
}

// requestExpires is the expiry a REGISTER asks for (RFC 3261 §10.2.1.1):
// the first Contact's expires parameter, else the Expires header; -1 when
// neither is present.
func requestExpires(req *sip.Request) int {
	if h := req.Contact(); h != nil {
		if v, ok := h.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return n
		}
	}
	return -1
}

// grantedExpires is the expiry a REGISTER 2xx grants (RFC 3261 §10.3 step
// 8): the largest Contact expires parameter, else the Expires header, else
// what was asked, else 3600 (RFC 3261 §10.2.1.1 default).
func grantedExpires(res *sip.Response, asked int) int {
	if asked == 0 {
		return 0 // an unregistration; other bindings in the 2xx are not this one's
	}
	best := -1
	for _, h := range res.Headers() {
		if c, ok := h.(*sip.ContactHeader); ok {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil && n > best {
					best = n
				}
			}
		}
	}
	if best >= 0 {
		return best
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return n
		}
	}
	if asked >= 0 {
		return asked
	}
	return 3600
}
