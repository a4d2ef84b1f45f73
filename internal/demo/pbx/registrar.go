package pbx

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// defaultExpires is used when a REGISTER names no expiry (RFC 3261 §10.2.1.1
// leaves the choice to the registrar; 3600 s is the customary value).
const defaultExpires = 3600

// Binding is one registered contact of an account.
type Binding struct {
	// Account is the registered user (the To user of the REGISTER).
	Account string
	// Contact is the registered Contact URI, as sent by the phone.
	Contact string
	// Path holds the Path header values in the order received (RFC 3327
	// §5.3); the first is the proxy nearest to the registrar. Requests to
	// this binding are routed through them.
	Path []string
	// Source is the address the REGISTER arrived from.
	Source netip.AddrPort
	// Expires is when the binding lapses.
	Expires time.Time
}

// Registrations returns the live bindings, sorted by account then contact.
func (p *PBX) Registrations() []Binding {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Binding
	for _, byContact := range p.bindings {
		for _, b := range byContact {
			if b.Expires.After(now) {
				c := *b
				c.Path = slices.Clone(b.Path)
				out = append(out, c)
			}
		}
	}
	slices.SortFunc(out, func(a, b Binding) int {
		if c := strings.Compare(a.Account, b.Account); c != 0 {
			return c
		}
		return strings.Compare(a.Contact, b.Contact)
	})
	return out
}

// binding returns the most recently refreshed live binding of account.
func (p *PBX) binding(account string) (Binding, bool) {
	var best Binding
	found := false
	for _, b := range p.Registrations() {
		if b.Account == account && (!found || b.Expires.After(best.Expires)) {
			best, found = b, true
		}
	}
	return best, found
}

// onRegister implements the registrar (RFC 3261 §10.3) with digest
// authentication. Like FreeSWITCH it challenges every REGISTER without
// credentials (even for unknown users) and answers 403 to a wrong password
// or an unknown user.
func (p *PBX) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	if !p.authorize(req, tx, "Authorization", 401) {
		return
	}
	to := req.To()
	user := authUser(req.GetHeader("Authorization"))
	if to == nil || to.Address.User != user {
		// Username mismatch between To and credentials: FreeSWITCH
		// rejects it with 403 and fires register_failure.
		p.stats.authFailures.Add(1)
		p.log.Info("register username mismatch", "auth_user", quote(user), "source", req.Source())
		respond(tx, sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	account := to.Address.User
	headerExpires := defaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 {
			headerExpires = v
		}
	}
	var path []string
	for _, h := range req.GetHeaders("Path") {
		for v := range strings.SplitSeq(h.Value(), ",") {
			if v = strings.TrimSpace(v); v != "" {
				path = append(path, v)
			}
		}
	}
	src, _ := netip.ParseAddrPort(req.Source())
	now := p.now()

	p.mu.Lock()
	byContact := p.bindings[account]
	if byContact == nil {
		byContact = make(map[string]*Binding)
		p.bindings[account] = byContact
	}
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if c.Address.Wildcard {
			// RFC 3261 §10.3 step 6: "*" removes every binding.
			clear(byContact)
			continue
		}
		expires := headerExpires
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				expires = n
			}
		}
		key := c.Address.String()
		if expires == 0 {
			delete(byContact, key)
			continue
		}
		byContact[key] = &Binding{
			Account: account,
			Contact: key,
			Path:    path,
			Source:  src,
			Expires: now.Add(time.Duration(expires) * time.Second),
		}
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range byContact {
		if b.Expires.After(now) {
			secs := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
			res.AppendHeader(sip.NewHeader("Contact", "<"+b.Contact+">;expires="+strconv.Itoa(secs)))
		}
	}
	p.mu.Unlock()

	if len(path) > 0 {
		// RFC 3327 §5.3: the registrar returns the stored Path in the 200.
		for _, v := range path {
			res.AppendHeader(sip.NewHeader("Path", v))
		}
		res.AppendHeader(sip.NewHeader("Supported", "path"))
	}
	p.stats.registersOK.Add(1)
	p.log.Debug("registered", "account", account, "source", req.Source(), "path", len(path))
	respond(tx, res)
}

// authorize checks the credentials header of req and, when they do not
// authenticate, answers with a challenge (code 401 or 407) or 403 and
// returns false. RFC 3261 §22.2 (401) and §22.3 (407); RFC 2617 §3.2.1 for
// stale=true.
func (p *PBX) authorize(req *sip.Request, tx sip.ServerTransaction, header string, code int) bool {
	value := ""
	if h := req.GetHeader(header); h != nil {
		value = h.Value()
	}
	user, result := p.auth.verify(value, req.Method.String())
	switch result {
	case authOK:
		return true
	case authMissing, authBadNonce, authStale:
		stale := result == authStale
		reason, challengeHeader := "Unauthorized", "WWW-Authenticate"
		if code == 407 {
			reason, challengeHeader = "Proxy Authentication Required", "Proxy-Authenticate"
		}
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		res.AppendHeader(sip.NewHeader(challengeHeader, p.auth.challenge(stale)))
		p.stats.challenges.Add(1)
		if stale {
			p.stats.stale.Add(1)
		}
		respond(tx, res)
		return false
	default:
		p.stats.authFailures.Add(1)
		p.log.Info("authentication failed", "method", req.Method.String(), "user", quote(user),
			"source", req.Source(), "unknown_user", result == authUnknownUser)
		respond(tx, sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return false
	}
}

// authUser returns the username claimed by a credentials header, or "".
func authUser(h sip.Header) string {
	if h == nil {
		return ""
	}
	return credentialUser(h.Value())
}
