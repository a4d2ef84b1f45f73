package config

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// UI configures the web console.
type UI struct {
	// Listen is host:port of a listener for the console alone; empty
	// serves it on admin.listen under /ui/. Default empty.
	Listen string `yaml:"listen"`
	// IdleTimeout ends a session unused for this long. Default 30m.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// SessionMax ends any session this old. Default 12h.
	SessionMax Duration `yaml:"session_max"`
	// SecureCookies marks session cookies Secure even on plain HTTP: set it
	// when a TLS reverse proxy on the same host fronts the console. Over
	// TLS they are always Secure. Default false.
	SecureCookies bool `yaml:"secure_cookies"`
	// LoginAttempts is how many failed logins one user name may have from
	// one address within LockoutWindow before that pair is locked out.
	// Default 5.
	LoginAttempts int `yaml:"login_attempts"`
	// SourceAttempts is how many failed logins one address may have within
	// LockoutWindow, whatever the names. Default 20.
	SourceAttempts int `yaml:"source_attempts"`
	// LockoutWindow is the counting window and Lockout how long a lockout
	// lasts. Defaults 15m and 15m.
	LockoutWindow Duration `yaml:"lockout_window"`
	Lockout       Duration `yaml:"lockout"`
	// RPID is the WebAuthn relying party ID security keys are registered
	// to: the console's domain name (console.example.com), never taken
	// from a request. Empty offers security keys only on plain HTTP at
	// http://localhost:PORT (an SSH tunnel), RP ID "localhost". Default
	// empty.
	RPID string `yaml:"rp_id"`
	// Origins are the origins the console's pages are loaded from, whose
	// security-key answers are accepted: https://RPID (or a subdomain),
	// with a port when not 443. Empty with RPID set means https://RPID.
	// Default empty.
	Origins []string `yaml:"origins"`
}

// defaultUI is the ui section's default.
func defaultUI() UI {
	return UI{
		IdleTimeout: Duration(30 * time.Minute), SessionMax: Duration(12 * time.Hour),
		LoginAttempts: 5, SourceAttempts: 20,
		LockoutWindow: Duration(15 * time.Minute), Lockout: Duration(15 * time.Minute),
		Origins: []string{},
	}
}

// validate checks the ui section.
func (u UI) validate() error {
	bad := func(path, msg, hint string) error { return &Error{Path: "ui." + path, Msg: msg, Hint: hint} }
	if u.Listen != "" {
		if _, _, err := net.SplitHostPort(u.Listen); err != nil {
			return bad("listen", fmt.Sprintf("%q is not host:port", u.Listen), "e.g. 127.0.0.1:9062, or empty to serve on admin.listen")
		}
	}
	if u.IdleTimeout < Duration(time.Minute) || u.SessionMax < u.IdleTimeout {
		return bad("idle_timeout", "must be at least 1m and at most session_max", "defaults: idle_timeout 30m, session_max 12h")
	}
	if u.LoginAttempts < 1 || u.SourceAttempts < u.LoginAttempts {
		return bad("login_attempts", "must be at least 1 and at most source_attempts", "defaults: login_attempts 5, source_attempts 20")
	}
	if u.LockoutWindow <= 0 || u.Lockout <= 0 {
		return bad("lockout", "lockout_window and lockout must be positive", "defaults: 15m and 15m")
	}
	return u.validateWebAuthn()
}

// validateWebAuthn checks ui.rp_id and ui.origins: a lowercase domain
// name (browsers refuse IP addresses as RP IDs), and origins on it or its
// subdomains (WebAuthn §5.1.4.1: the RP ID must be a registrable suffix of
// the origin's host), https except for localhost.
func (u UI) validateWebAuthn() error {
	bad := func(path, msg, hint string) error { return &Error{Path: "ui." + path, Msg: msg, Hint: hint} }
	if u.RPID == "" {
		if len(u.Origins) > 0 {
			return bad("origins", "needs ui.rp_id", "set rp_id to the console's domain name")
		}
		return nil
	}
	if !isDomainName(u.RPID) {
		return bad("rp_id", fmt.Sprintf("%q is not a lowercase domain name", u.RPID), "the console's host name, without scheme or port, e.g. console.example.com (not an IP address)")
	}
	for i, o := range u.Origins {
		path := fmt.Sprintf("origins[%d]", i)
		p, err := url.Parse(o)
		if err != nil || p.Host == "" || p.User != nil || p.Path != "" || p.RawQuery != "" || p.Fragment != "" || p.Opaque != "" {
			return bad(path, fmt.Sprintf("%q is not an origin", o), "scheme://host[:port], e.g. https://"+u.RPID)
		}
		host := p.Hostname()
		if host != u.RPID && !strings.HasSuffix(host, "."+u.RPID) {
			return bad(path, fmt.Sprintf("%q is not on rp_id %q", o, u.RPID), "an origin's host must be rp_id or a subdomain of it")
		}
		if p.Scheme != "https" && !(p.Scheme == "http" && host == "localhost") {
			return bad(path, fmt.Sprintf("%q is not https", o), "browsers offer security keys only to https pages (and http://localhost)")
		}
	}
	return nil
}

// isDomainName reports whether s is a lowercase DNS name of letters,
// digits and hyphens, and not an IP address.
func isDomainName(s string) bool {
	if s == "" || len(s) > 253 || net.ParseIP(s) != nil {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
