package sipfw

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
)

// Route binds public listeners to one upstream: FreeSWITCH's internal
// profile behind the phones' listeners, its external profile behind the
// trunks' listeners. A request that arrives on a route's listener goes only
// to that route's upstream, and a request from that upstream only to flows
// on that route's listeners.
type Route struct {
	// Name labels the route in logs and metrics; unique, [a-z0-9_-].
	Name string
	// Listen lists the route's public listeners (see Options.Listen).
	Listen []string
	// Upstream is the route's PBX socket (see Options.Upstream).
	Upstream string
	// AllowSources, when not empty, are the only sources that may use the
	// route (a trunk profile: the carriers' addresses). Empty: anyone.
	AllowSources []netip.Prefix
	// DenySources may never use the route, even when AllowSources holds
	// them (the trunks' addresses on the phones' route).
	DenySources []netip.Prefix
}

// DefaultRouteName names the route Options.Listen and Options.Upstream
// make.
const DefaultRouteName = "default"

var routeName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// upstream is one route at run time: its PBX, the listener that faces it,
// its health and, for tcp://, its dialled connection.
type upstream struct {
	name   string
	url    string
	net    string // "udp" or "tcp"
	addr   netip.AddrPort
	listen []string
	allow  []netip.Prefix
	deny   []netip.Prefix
	inside *listener // faces the PBX (see Proxy.bind)
	health upstreamHealth
	dialer upstreamDialer
}

// admits reports whether src may use the route: not in its deny list, and
// in its allow list when it has one. Checked before a byte is parsed, like
// the Gate (DESIGN key decision 3).
func (u *upstream) admits(src netip.Addr) bool {
	for _, pf := range u.deny {
		if pf.Contains(src) {
			return false
		}
	}
	if len(u.allow) == 0 {
		return true
	}
	for _, pf := range u.allow {
		if pf.Contains(src) {
			return true
		}
	}
	return false
}

// buildRoutes checks the default route (Listen, Upstream) and o.Routes and
// returns them in that order. A listener URL may appear once in all, and a
// route name once.
func buildRoutes(o *Options) ([]*upstream, error) {
	all := make([]Route, 0, 1+len(o.Routes))
	if len(o.Listen) > 0 || o.Upstream != "" {
		all = append(all, Route{Name: DefaultRouteName, Listen: o.Listen, Upstream: o.Upstream,
			AllowSources: o.AllowSources, DenySources: o.DenySources})
	}
	all = append(all, o.Routes...)
	if len(all) == 0 {
		return nil, fmt.Errorf("no listeners")
	}
	seenName := map[string]bool{}
	seenListen := map[string]bool{}
	var out []*upstream
	for _, r := range all {
		if !routeName.MatchString(r.Name) {
			return nil, fmt.Errorf("route name %q: want 1 to 32 of a-z, 0-9, _ and -", r.Name)
		}
		if seenName[r.Name] {
			return nil, fmt.Errorf("route %q: name used twice", r.Name)
		}
		seenName[r.Name] = true
		if len(r.Listen) == 0 {
			return nil, fmt.Errorf("route %q: no listeners", r.Name)
		}
		upNet, upAddr, err := parseURL(r.Upstream)
		if err != nil {
			return nil, fmt.Errorf("route %q: upstream: %w", r.Name, err)
		}
		if upNet != "udp" && upNet != "tcp" {
			return nil, fmt.Errorf("route %q: upstream %q: only udp and tcp are supported", r.Name, r.Upstream)
		}
		if upAddr.Addr().IsUnspecified() || upAddr.Port() == 0 {
			return nil, fmt.Errorf("route %q: upstream %q: needs an address and a port", r.Name, r.Upstream)
		}
		for _, l := range r.Listen {
			n, ap, err := parseURL(l)
			if err != nil {
				return nil, fmt.Errorf("route %q: listener: %w", r.Name, err)
			}
			if (n == "tls" || n == "wss") && o.TLS == nil {
				return nil, fmt.Errorf("route %q: listener %q needs a TLS config", r.Name, l)
			}
			// Two routes on one socket could not tell whose a message is,
			// and Addrs is keyed by the URL.
			fam := "tcp"
			if n == "udp" {
				fam = "udp"
			}
			k := fam + " " + ap.String()
			if seenListen[l] || (ap.Port() != 0 && seenListen[k]) {
				return nil, fmt.Errorf("route %q: listener %q is bound twice", r.Name, l)
			}
			seenListen[l], seenListen[k] = true, true
		}
		for _, u := range out {
			if u.net == upNet && u.addr == upAddr {
				return nil, fmt.Errorf("route %q: upstream %q is route %q's too", r.Name, r.Upstream, u.name)
			}
		}
		out = append(out, &upstream{name: r.Name, url: r.Upstream, net: upNet, addr: upAddr,
			listen: slices.Clone(r.Listen), allow: masked(r.AllowSources), deny: masked(r.DenySources)})
	}
	return out, nil
}

// masked returns ps masked and with IPv4-mapped addresses unmapped, so
// Contains matches the unmapped source addresses the proxy sees.
func masked(ps []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ps))
	for _, pf := range ps {
		a := pf.Addr()
		bits := pf.Bits()
		if a.Is4In6() {
			a = a.Unmap()
			bits = max(bits-96, 0)
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	return out
}

// routeIP is the local address the kernel would use to reach addr.
func routeIP(addr netip.AddrPort) netip.Addr {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return netip.IPv4Unspecified()
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// sameRoute reports whether two flows' listeners belong to one route: a
// flow token minted on one route's listener is refused on another's, so a
// PBX of one route never reaches phones on another and a token replayed
// across routes is forged.
func sameRoute(a, b flow) bool {
	return a.lis != nil && b.lis != nil && a.lis.route == b.lis.route
}
