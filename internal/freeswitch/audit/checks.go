package audit

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"
)

// auditor holds one audit's inputs and findings.
type auditor struct {
	dir   string
	doc   *Doc
	root  *Node
	o     Options
	out   []Finding
	lists map[string]*ACL
	users []*User
}

func (a *auditor) add(f Finding) { a.out = append(a.out, f) }

func (a *auditor) run() {
	a.users = users(a.root)
	a.lists = acls(a.root, a.users)
	for _, p := range profiles(a.root) {
		a.profile(p)
	}
	a.defaultPassword()
	a.passwords()
	a.tollAllow()
	a.eventSocket()
}

func q(s string) string { return fmt.Sprintf("%q", s) }

// profile runs the checks of one Sofia profile.
func (a *auditor) profile(p *Profile) {
	subj := "profile " + q(p.Name)
	authCalls, acAt := p.Flag("auth-calls", false)
	// mod_cti refuses to load an internal* profile without auth-calls.
	if strings.HasPrefix(strings.ToLower(p.Name), "internal") && !authCalls {
		msg := "auth-calls is not true"
		if acAt.Name == "" {
			msg = "auth-calls is not set (the default is false)"
		}
		a.add(Finding{Rule: "internal-auth-calls", Severity: Critical, File: acAt.File, Line: acAt.Line, Subject: subj, Message: msg,
			Why: "without auth-calls FreeSWITCH routes an INVITE to the profile's context with no digest challenge: anyone who reaches the port places calls (sofia.c, sofia_handle_sip_i_invite); mod_cti refuses to load such a profile",
			Fix: `<param name="auth-calls" value="true"/>, once, after any other auth-calls line (the last one wins)`})
	}
	if p.Name == "external" {
		if len(p.ACLs("apply-inbound-acl")) == 0 {
			a.add(Finding{Rule: "external-inbound-acl", Severity: High, File: p.File, Line: p.Line, Subject: subj, Message: "apply-inbound-acl is empty",
				Why: "with auth-calls false and no inbound ACL, any address on the internet reaches the external profile's context without a password; mod_cti refuses to load such a profile",
				Fix: `list the carriers' addresses in acl.conf.xml (<list name="carriers" default="deny">) and set <param name="apply-inbound-acl" value="carriers"/>`})
		}
		ctx, at := "default", Param{File: p.File, Line: p.Line}
		if x, ok := p.Last("context"); ok {
			ctx, at = x.Value, x
		}
		if ctx == "default" || ctx == "internal" {
			msg := fmt.Sprintf("context is %q", ctx)
			if at.Name == "" {
				msg = `context is not set, and sofia.c then uses "default"`
			}
			a.add(Finding{Rule: "external-context", Severity: Critical, File: at.File, Line: at.Line, Subject: subj, Message: msg,
				Why: "the default context dials out through the gateways; unauthenticated callers on the external profile land in it and call abroad on your account; mod_cti refuses to load this",
				Fix: `<param name="context" value="public"/> and keep public free of bridges to gateways`})
		}
	}
	if on, at := p.Flag("accept-blind-reg", false); on {
		a.add(Finding{Rule: "accept-blind-reg", Severity: Critical, File: at.File, Line: at.Line, Subject: subj, Message: "accept-blind-reg is true",
			Why: "every REGISTER is accepted without a password (sofia_reg.c): anyone can register as any extension and take its calls",
			Fix: "remove the accept-blind-reg param"})
	}
	if on, at := p.Flag("accept-blind-auth", false); on {
		a.add(Finding{Rule: "accept-blind-auth", Severity: Critical, File: at.File, Line: at.Line, Subject: subj, Message: "accept-blind-auth is true",
			Why: "calls are authorised without checking the password; the caller becomes whichever user its From header names, with that user's toll_allow and context (sofia.c)",
			Fix: "remove the accept-blind-auth param"})
	}
	if on, at := p.Flag("require-secure-rtp", false); on {
		a.add(Finding{Rule: "require-secure-rtp", Severity: Low, File: at.File, Line: at.Line, Subject: subj, Message: "require-secure-rtp is set, but it does nothing",
			Why: "sofia.c sets PFLAG_SECURE for it and no code ever tests that flag: media stays plain RTP unless SRTP is asked for by channel variables",
			Fix: "remove it; set the channel variable rtp_secure_media=mandatory (per user or in the dialplan) where SRTP is required"})
	}
	if on, at := p.Flag("disable-rtp-auto-adjust", false); on {
		a.add(Finding{Rule: "rtp-auto-adjust-off", Severity: Low, File: at.File, Line: at.Line, Subject: subj, Message: "disable-rtp-auto-adjust is true",
			Why: "the guard relays no media: phones behind NAT send RTP straight to FreeSWITCH, which must answer to where it comes from; with auto-adjust off they get one-way or no audio and users are pushed to insecure workarounds",
			Fix: "remove disable-rtp-auto-adjust (auto-adjust is on by default)"})
	}
	a.acls(p, subj, "apply-inbound-acl")
	a.acls(p, subj, "apply-register-acl")
	a.proxyACL(p, subj)
	a.tls(p, subj)
}

// acls checks the lists of an inbound or register ACL param.
func (a *auditor) acls(p *Profile, subj, param string) {
	effect := "a match authorises the call with no password when auth-calls is on, and is the only filter when it is off (sofia.c, sofia_handle_sip_i_invite)"
	if param == "apply-register-acl" {
		effect = "a match accepts the REGISTER with no password (sofia_reg.c, REG_AUTO_REGISTER)"
	}
	for _, x := range p.ACLs(param) {
		l := resolveACL(x.Value, a.lists)
		if l == nil {
			a.add(Finding{Rule: "acl-unknown", Severity: Low, File: x.File, Line: x.Line, Subject: subj, Message: fmt.Sprintf("%s names %q, which acl.conf.xml does not define", param, x.Value),
				Why: "an undefined list matches nothing; the intended restriction is not in force",
				Fix: "define the list in autoload_configs/acl.conf.xml or correct the name"})
			continue
		}
		if why := l.Broad(); why != "" {
			a.add(Finding{Rule: "acl-broad", Severity: High, File: x.File, Line: x.Line, Subject: subj, Message: fmt.Sprintf("%s %q is broad: %s", param, l.Name, why),
				Why: effect + "; a broad list hands that to every address in it",
				Fix: `use a list with default="deny" that allows only the hosts that must skip the password (carriers, not the guard)`})
		}
		for _, g := range a.o.Guard {
			in, maybe := l.Contains(g), false
			if l.Name == "localnet.auto" {
				in, maybe = g.IsPrivate(), true
			} else if l.Unknown && in {
				maybe = true
			}
			if !in {
				continue
			}
			name := l.Name
			if l.Builtin != "" {
				name = fmt.Sprintf("%s (%s)", l.Name, l.Builtin)
			}
			sev, msg := Critical, fmt.Sprintf("%s %s contains the guard's address %s", param, name, g)
			if maybe {
				sev, msg = High, fmt.Sprintf("%s %s likely contains the guard's address %s", param, name, g)
			}
			a.add(Finding{Rule: "guard-in-acl", Severity: sev, File: x.File, Line: x.Line, Subject: subj, Message: msg,
				Why: "FreeSWITCH checks this ACL against the packet's source, which for everything the guard forwards is the guard: " + effect + " for every request that comes through the guard",
				Fix: "take the guard's address out of this list (and out of any list it names); trust the guard only through apply-proxy-acl"})
		}
	}
}

// proxyACL checks apply-proxy-acl: the hosts trusted to set X-AUTH-IP.
func (a *auditor) proxyACL(p *Profile, subj string) {
	for _, x := range p.ACLs("apply-proxy-acl") {
		l := resolveACL(x.Value, a.lists)
		if l == nil {
			continue
		}
		why := l.Broad()
		if why == "" && len(a.o.Guard) > 0 {
			for _, n := range l.Nodes {
				if n.allow && !(n.prefix.IsSingleIP() && containsAddr(a.o.Guard, n.prefix.Addr())) {
					why = "it allows " + n.prefix.String() + ", which is not the guard"
					break
				}
			}
		}
		if why == "" {
			continue
		}
		a.add(Finding{Rule: "proxy-acl-broad", Severity: High, File: x.File, Line: x.Line, Subject: subj, Message: fmt.Sprintf("apply-proxy-acl %q is broader than the guard: %s", l.Name, why),
			Why: "a host in the proxy ACL may name any source address in X-AUTH-IP and FreeSWITCH checks the inbound ACL against that claim (sofia.c): one more host here can claim a carrier's address and call without a password",
			Fix: `a list with default="deny" holding only the guard's address: <node type="allow" cidr="GUARD/32"/>`})
	}
}

func containsAddr(as []netip.Addr, b netip.Addr) bool {
	for _, a := range as {
		if a == b.Unmap() {
			return true
		}
	}
	return false
}

// defaultPassword reports vars.xml's default_password left at 1234.
func (a *auditor) defaultPassword() {
	v, ok := a.doc.Vars["default_password"]
	if !ok || v.Value != "1234" {
		return
	}
	msg := "default_password is 1234"
	if v.InComment {
		msg += " (set inside an XML comment, which FreeSWITCH's preprocessor still runs)"
	}
	a.add(Finding{Rule: "default-password", Severity: Critical, File: v.File, Line: v.Line, Subject: "variable default_password", Message: msg,
		Why: "every vanilla user's password is $${default_password}; scanners try 1234 first and register as any extension",
		Fix: "remove this line (commenting it out does not disable it) and give each user its own strong password"})
}

// passwords checks every directory user against the policy.
func (a *auditor) passwords() {
	for _, u := range a.users {
		subj := fmt.Sprintf("user %q", u.ID+"@"+u.Domain)
		pw, hasPW := u.Params["password"]
		_, hasHash := u.Params["a1-hash"]
		allowEmpty := true
		if x, ok := u.Params["allow-empty-password"]; ok {
			allowEmpty = switchTrue(x.Value)
		}
		switch {
		case (!hasPW || pw.Value == "") && !hasHash:
			if allowEmpty {
				a.add(Finding{Rule: "empty-password", Severity: Critical, File: u.File, Line: u.Line, Subject: subj, Message: "no password and no a1-hash",
					Why: "a user with neither authenticates with any password at all (sofia_reg.c, sofia_reg_parse_auth: allow-empty-password defaults to true)",
					Fix: `give the user a strong password, or <param name="allow-empty-password" value="false"/>`})
			}
		case hasPW && pw.Value == "1234":
			a.add(Finding{Rule: "default-password", Severity: Critical, File: pw.File, Line: pw.Line, Subject: subj, Message: "password is 1234",
				Why: "1234 is FreeSWITCH's shipped default_password, the first password every scanner tries",
				Fix: "set a strong, unique password"})
		case hasPW:
			if why := a.weak(pw.Value, u.ID); why != "" {
				a.add(Finding{Rule: "weak-password", Severity: High, File: pw.File, Line: pw.Line, Subject: subj, Message: "password " + why,
					Why: "registration crackers guess short, single-class or extension-derived passwords within hours, then call abroad as the user",
					Fix: fmt.Sprintf("at least %d characters mixing %d of digits, lower case, upper case and other characters", a.o.Policy.Minimum, a.o.Policy.Strength)})
			}
		}
		if vm, ok := u.Params["vm-password"]; ok && vm.Value == u.ID && u.ID != "" {
			a.add(Finding{Rule: "vm-password-extension", Severity: Medium, File: vm.File, Line: vm.Line, Subject: subj, Message: "vm-password equals the extension",
				Why: "voicemail PINs equal to the extension are guessed first; voicemail that can call out (callback, forwarding) becomes a way to dial abroad",
				Fix: "set a random vm-password, or remove it so the user's password is used"})
		}
		for _, k := range []string{"sip-force-contact"} {
			x, ok := u.Params[k]
			if !ok {
				x, ok = u.Vars[k]
			}
			// The -2.0 form keeps an fs_path already in the Contact
			// (sofia_reg_handle_register_token); the others replace the
			// whole Contact, the guard's path with it.
			if ok && x.Value != "" && !strings.EqualFold(x.Value, "NDLB-connectile-dysfunction-2.0") {
				a.add(Finding{Rule: "sip-force-contact", Severity: Medium, File: x.File, Line: x.Line, Subject: subj, Message: fmt.Sprintf("sip-force-contact is %q", x.Value),
					Why: "sofia_reg.c (sofia_reg_handle_register_token) replaces the registered Contact with the packet's source, the guard, and the fs_path the guard's Path put there is lost: calls to this phone no longer reach it through the guard",
					Fix: "remove sip-force-contact for phones that register through the guard"})
			}
		}
	}
}

// weak returns why pw fails the policy, or "".
func (a *auditor) weak(pw, id string) string {
	if pw == id {
		return "equals the user id"
	}
	if n := len([]rune(pw)); n < a.o.Policy.Minimum {
		return fmt.Sprintf("has %d characters, fewer than %d", n, a.o.Policy.Minimum)
	}
	if c := classes(pw); c < a.o.Policy.Strength {
		return fmt.Sprintf("mixes %d of the 4 character classes, fewer than %d", c, a.o.Policy.Strength)
	}
	return ""
}

// classes counts digits, lower case, upper case and other characters.
func classes(s string) int {
	var d, l, u, o int
	for _, r := range s {
		switch {
		case unicode.IsDigit(r):
			d = 1
		case unicode.IsLower(r):
			l = 1
		case unicode.IsUpper(r):
			u = 1
		default:
			o = 1
		}
	}
	return d + l + u + o
}

// tollAllow reports toll_allow including international for every user.
func (a *auditor) tollAllow() {
	if len(a.users) == 0 {
		return
	}
	for _, u := range a.users {
		v, ok := u.Vars["toll_allow"]
		if !ok || !hasToken(v.Value, "international") {
			return
		}
	}
	u := a.users[0]
	v := u.Vars["toll_allow"]
	a.add(Finding{Rule: "toll-allow-international", Severity: High, File: v.File, Line: v.Line, Subject: fmt.Sprintf("all %d users", len(a.users)), Message: "every user's toll_allow includes international",
		Why: "one cracked password on any extension is enough to call premium international numbers; vanilla's dialplan gates 011 calls on ${toll_allow} alone",
		Fix: "drop international from toll_allow except for the few users who need it"})
}

func hasToken(list, tok string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// eventSocket checks mod_event_socket's settings (mod_event_socket.c,
// config(): listen-ip defaults to 127.0.0.1, password to ClueCon, and the
// ACL to loopback.auto when none is set; every listed ACL must pass).
func (a *auditor) eventSocket() {
	c := config(a.root, "event_socket.conf")
	if c == nil {
		return
	}
	ps := params(c.Child("settings"))
	last := func(name string) (Param, bool) {
		var out Param
		ok := false
		for _, p := range ps {
			if strings.EqualFold(p.Name, name) {
				out, ok = p, true
			}
		}
		return out, ok
	}
	ip, ipSet := last("listen-ip")
	loopback := !ipSet || isLoopback(ip.Value)
	open := false
	var openWhy string
	if !loopback {
		open = true
		openWhy = "the default ACL loopback.auto"
		var acl []Param
		for _, p := range ps {
			if strings.EqualFold(p.Name, "apply-inbound-acl") && strings.TrimSpace(p.Value) != "" {
				acl = append(acl, p)
			}
		}
		if len(acl) == 0 {
			open = false
		}
		for _, x := range acl {
			l := resolveACL(x.Value, a.lists)
			if l == nil || l.Broad() == "" {
				open = false // every list must pass; a narrow one restricts
			} else {
				openWhy = l.Broad()
			}
		}
		if open {
			a.add(Finding{Rule: "esl-exposed", Severity: High, File: ip.File, Line: ip.Line, Subject: "event socket", Message: fmt.Sprintf("listens on %s and its ACL is broad: %s", ip.Value, openWhy),
				Why: "whoever authenticates to the Event Socket runs any API command, e.g. originate a call through a gateway",
				Fix: `listen-ip 127.0.0.1, or an apply-inbound-acl list with default="deny" holding only the hosts that need it`})
		}
	}
	pw, ok := last("password")
	if !ok || pw.Value == "ClueCon" {
		at := pw
		if !ok {
			at = Param{File: c.File, Line: c.Line}
		}
		sev := Medium
		if open {
			sev = High
		}
		a.add(Finding{Rule: "esl-password", Severity: sev, File: at.File, Line: at.Line, Subject: "event socket", Message: "the password is ClueCon, FreeSWITCH's published default",
			Why: "the Event Socket password is compared with no rate limit or lockout; with ClueCon any process that reaches the port controls FreeSWITCH and can originate calls",
			Fix: "set a long random password and give it to the guard and your other Event Socket clients"})
	}
}

func isLoopback(s string) bool {
	a, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(s), "[]"))
	return err == nil && a.Unmap().IsLoopback()
}
