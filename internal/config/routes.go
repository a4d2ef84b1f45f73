package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

var routeNameRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// validateRoutes checks sip.routes against each other and against the
// default route (sip.listen, sip.upstream): unique names, every listener
// bound once, every upstream used by one route only.
func (c *Config) validateRoutes() error {
	bad := func(path, msg, hint string) error { return &Error{Path: path, Msg: msg, Hint: hint} }
	listeners := map[string]string{} // socket → the key that binds it
	bind := func(path, l string) error {
		u, err := ParseSIPURL(l, "udp", "tcp", "tls", "ws", "wss")
		if err != nil {
			return bad(path, err.Error(), "udp://0.0.0.0:5080, tcp://, tls://, ws:// or wss://")
		}
		fam := "tcp"
		if u.Scheme == "udp" {
			fam = "udp"
		}
		host, port, _ := net.SplitHostPort(u.Host)
		key := fam + " " + net.JoinHostPort(host, port)
		if port == "0" {
			key = l
		}
		if prev, ok := listeners[key]; ok {
			return bad(path, fmt.Sprintf("%q is bound by %s already", l, prev), "give each route its own port")
		}
		listeners[key] = path
		return nil
	}
	upstreams := map[string]string{}
	use := func(path, up string) error {
		u, err := ParseSIPURL(up, "udp", "tcp")
		if err != nil {
			return bad(path, err.Error(), "the profile's private address, e.g. udp://127.0.0.1:5080")
		}
		key := u.Scheme + " " + u.Host
		if prev, ok := upstreams[key]; ok {
			return bad(path, fmt.Sprintf("%q is %s already", up, prev), "one route per FreeSWITCH profile")
		}
		upstreams[key] = path
		return nil
	}
	for i, o := range c.SIP.WSOrigins {
		if !validOrigin(o) {
			return bad(fmt.Sprintf("sip.ws_origins[%d]", i), fmt.Sprintf("%q is not an origin", o), `scheme://host[:port] as a browser sends it, e.g. "https://phone.example.com", or "*"`)
		}
	}
	if len(c.SIP.Listen) > 0 {
		for i, l := range c.SIP.Listen {
			if err := bind(fmt.Sprintf("sip.listen[%d]", i), l); err != nil {
				return err
			}
		}
		if err := use("sip.upstream", c.SIP.Upstream); err != nil {
			return err
		}
	} else if len(c.SIP.AllowSources)+len(c.SIP.DenySources) > 0 {
		key := "sip.allow_sources"
		if len(c.SIP.AllowSources) == 0 {
			key = "sip.deny_sources"
		}
		return bad(key, "restricts sip.listen, which is empty", "move the list into the sip.routes entry it is for")
	}
	names := map[string]bool{}
	if len(c.SIP.Listen) > 0 {
		names["default"] = true
	}
	for i, r := range c.SIP.Routes {
		at := fmt.Sprintf("sip.routes[%d]", i)
		if !routeNameRE.MatchString(r.Name) {
			return bad(at+".name", fmt.Sprintf("%q is not 1 to 32 of a-z, 0-9, _ and -", r.Name), "e.g. internal or external")
		}
		if names[r.Name] {
			return bad(at+".name", fmt.Sprintf("%q is used twice (default names sip.listen)", r.Name), "give every route its own name")
		}
		names[r.Name] = true
		if len(r.Listen) == 0 {
			return bad(at+".listen", "must not be empty", "e.g. [\"udp://0.0.0.0:5080\"]")
		}
		for j, l := range r.Listen {
			p := fmt.Sprintf("%s.listen[%d]", at, j)
			if err := bind(p, l); err != nil {
				return err
			}
			scheme, _, _ := strings.Cut(l, "://")
			if (scheme == "tls" || scheme == "wss") && (c.SIP.TLS.Cert == "" || c.SIP.TLS.Key == "") {
				return bad(p, "a "+scheme+":// listener needs sip.tls.cert and sip.tls.key", "PEM files of the guard's certificate and key")
			}
		}
		if r.Upstream == "" {
			return bad(at+".upstream", "must be set", "the profile's private address, e.g. udp://127.0.0.1:5080")
		}
		if err := use(at+".upstream", r.Upstream); err != nil {
			return err
		}
	}
	return nil
}

// validOrigin reports whether s is "*" or an origin as RFC 6454 §6.2
// serialises it: scheme://host[:port], nothing else.
func validOrigin(s string) bool {
	if s == "*" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}
