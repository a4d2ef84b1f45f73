package audit

import (
	"net/netip"
	"strings"
)

// aclNode is one <node> of a network list.
type aclNode struct {
	prefix netip.Prefix
	allow  bool
	file   string
	line   int
}

// ACL is one network list, evaluated as switch_utils.c's
// switch_network_list_validate_ip_port_token() does: the longest matching
// prefix decides; among equal prefixes the node first in the XML wins
// (nodes are prepended as they are added, and the walk keeps a later match
// of equal length); no match gives the list's default.
type ACL struct {
	Name  string
	Allow bool // the list's default
	// DefaultSet is whether default= was written (absent means allow).
	DefaultSet bool
	Nodes      []aclNode
	File       string
	Line       int
	// Builtin describes a *.auto list; Unknown marks one whose content
	// depends on the host (localnet.auto, the host side of nat.auto).
	Builtin string
	Unknown bool
}

// Contains reports whether the list allows a.
func (l *ACL) Contains(a netip.Addr) bool {
	a = a.Unmap()
	ok, bits := l.Allow, -1
	for i := len(l.Nodes) - 1; i >= 0; i-- {
		n := l.Nodes[i]
		if n.prefix.Bits() >= bits && n.prefix.Contains(a) {
			ok, bits = n.allow, n.prefix.Bits()
		}
	}
	return ok
}

// Broad returns why the list lets in far more than a handful of known
// hosts, or "".
func (l *ACL) Broad() string {
	if l.Builtin != "" {
		switch l.Name {
		case "loopback.auto", "localnet.auto":
			return ""
		}
		return l.Name + " (" + l.Builtin + ")"
	}
	if l.Allow {
		if l.DefaultSet {
			return `default="allow": every address not denied by a node is in the list`
		}
		return `no default= attribute, which FreeSWITCH reads as allow: every address not denied by a node is in the list`
	}
	for _, n := range l.Nodes {
		if n.allow && isBroad(n.prefix) {
			return "it allows " + n.prefix.String()
		}
	}
	return ""
}

// isBroad: an IPv4 prefix shorter than /16 or an IPv6 one shorter than /48.
func isBroad(p netip.Prefix) bool {
	if p.Addr().Is4() {
		return p.Bits() < 16
	}
	return p.Bits() < 48
}

func mustPrefixes(ss ...string) []aclNode {
	var out []aclNode
	for _, s := range ss {
		out = append(out, aclNode{prefix: netip.MustParsePrefix(s), allow: true})
	}
	return out
}

// builtinACLs returns the lists switch_core.c's switch_load_network_lists()
// creates before reading acl.conf.
func builtinACLs() map[string]*ACL {
	private := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128"}
	wan := func(name string, v4, v6 bool) *ACL {
		l := &ACL{Name: name, Builtin: "every public address", Allow: false}
		if v4 {
			l.Nodes = append(l.Nodes, mustPrefixes("0.0.0.0/0")...)
		}
		if v6 {
			l.Nodes = append(l.Nodes, mustPrefixes("::/0")...)
		}
		for _, p := range private {
			l.Nodes = append(l.Nodes, aclNode{prefix: netip.MustParsePrefix(p)})
		}
		return l
	}
	ls := []*ACL{
		{Name: "loopback.auto", Builtin: "127.0.0.0/8 and ::1", Nodes: mustPrefixes("127.0.0.0/8", "::1/128")},
		{Name: "rfc1918.auto", Builtin: "10/8, 172.16/12, 192.168/16 and fe80::/10: every private address", Nodes: mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fe80::/10")},
		{Name: "rfc6598.auto", Builtin: "100.64.0.0/10, carrier-grade NAT space", Nodes: mustPrefixes("100.64.0.0/10")},
		{Name: "nat.auto", Builtin: "the private and carrier-NAT ranges minus the host's own subnet", Nodes: mustPrefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"), Unknown: true},
		{Name: "localnet.auto", Builtin: "the FreeSWITCH host's own IPv4 subnet, detected at start", Unknown: true},
		{Name: "any_v4.auto", Builtin: "every IPv4 address", Nodes: mustPrefixes("0.0.0.0/0")},
		{Name: "any_v6.auto", Builtin: "every IPv6 address", Nodes: mustPrefixes("::/0")},
		wan("wan.auto", true, true), wan("wan_v4.auto", true, false), wan("wan_v6.auto", false, true),
	}
	out := map[string]*ACL{}
	for _, l := range ls {
		out[l.Name] = l
	}
	return out
}

// acls returns the built-in lists and acl.conf's network lists (a list in
// acl.conf replaces a built-in of the same name). A domain= node adds the
// cidr= of every user of that directory domain.
func acls(root *Node, us []*User) map[string]*ACL {
	out := builtinACLs()
	conf := config(root, "acl.conf")
	if conf == nil {
		return out
	}
	for _, nl := range conf.All("network-lists") {
		for _, ln := range nl.All("list") {
			l := &ACL{Name: ln.Attr("name"), Allow: true, File: ln.File, Line: ln.Line}
			if ln.HasAttr("default") {
				l.DefaultSet = true
				l.Allow = switchTrue(ln.Attr("default"))
			}
			for _, n := range ln.All("node") {
				allow := strings.EqualFold(n.Attr("type"), "allow")
				switch {
				case n.HasAttr("cidr"):
					for _, c := range strings.Split(n.Attr("cidr"), ",") {
						if p, ok := parsePrefix(c); ok {
							l.Nodes = append(l.Nodes, aclNode{prefix: p, allow: allow, file: n.File, line: n.Line})
						}
					}
				case n.HasAttr("host") && n.HasAttr("mask"):
					if p, ok := hostMask(n.Attr("host"), n.Attr("mask")); ok {
						l.Nodes = append(l.Nodes, aclNode{prefix: p, allow: allow, file: n.File, line: n.Line})
					}
				case n.HasAttr("domain"):
					for _, u := range us {
						if u.Domain != n.Attr("domain") || u.CIDR == "" {
							continue
						}
						for _, c := range strings.Split(u.CIDR, ",") {
							if p, ok := parsePrefix(c); ok {
								l.Nodes = append(l.Nodes, aclNode{prefix: p, allow: allow, file: u.File, line: u.Line})
							}
						}
					}
				}
			}
			out[l.Name] = l
		}
	}
	return out
}

// resolveACL returns the list an ACL param names: a list name, or an
// inline comma-separated CIDR list (switch_check_network_list_ip_port_token
// accepts one). The value may carry ":pass-context:fail-context" after the
// name. nil when the name is unknown.
func resolveACL(value string, lists map[string]*ACL) *ACL {
	v := strings.TrimSpace(value)
	if l, ok := lists[v]; ok {
		return l
	}
	if name, _, ok := strings.Cut(v, ":"); ok {
		if l, ok := lists[name]; ok {
			return l
		}
	}
	var nodes []aclNode
	for _, c := range strings.Split(v, ",") {
		p, ok := parsePrefix(c)
		if !ok {
			return nil
		}
		nodes = append(nodes, aclNode{prefix: p, allow: true})
	}
	return &ACL{Name: v, Nodes: nodes}
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// hostMask reads host="192.0.2.0" mask="255.255.255.0".
func hostMask(host, mask string) (netip.Prefix, bool) {
	h, err1 := netip.ParseAddr(strings.TrimSpace(host))
	m, err2 := netip.ParseAddr(strings.TrimSpace(mask))
	if err1 != nil || err2 != nil || !h.Is4() || !m.Is4() {
		return netip.Prefix{}, false
	}
	b := m.As4()
	bits := 0
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			if x&(1<<i) == 0 {
				return netip.PrefixFrom(h, bits).Masked(), true
			}
			bits++
		}
	}
	return netip.PrefixFrom(h, bits).Masked(), true
}
