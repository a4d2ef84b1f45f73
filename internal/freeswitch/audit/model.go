package audit

import (
	"strconv"
	"strings"
)

// Param is one <param name= value=> with its position.
type Param struct {
	Name, Value string
	File        string
	Line        int
}

// Profile is one Sofia SIP profile (sofia.conf's <profiles><profile>).
type Profile struct {
	Name   string
	File   string
	Line   int
	Params []Param // <settings> params in document order
}

// Last returns the last param called name (case-insensitive, as sofia.c's
// config_sofia_profile compares with strcasecmp; each repeat overwrites the
// one before), and whether there was one.
func (p *Profile) Last(name string) (Param, bool) {
	var out Param
	ok := false
	for _, x := range p.Params {
		if strings.EqualFold(x.Name, name) {
			out, ok = x, true
		}
	}
	return out, ok
}

// Flag returns a boolean param's final value: each occurrence sets or
// clears the flag (sofia.c: `if (switch_true(val)) sofia_set_pflag(...)
// else sofia_clear_pflag(...)`), so the last one wins; def when absent.
func (p *Profile) Flag(name string, def bool) (bool, Param) {
	x, ok := p.Last(name)
	if !ok {
		return def, Param{File: p.File, Line: p.Line}
	}
	return switchTrue(x.Value), x
}

// ACLs returns the lists applied by a repeatable ACL param
// (apply-inbound-acl, apply-register-acl, apply-proxy-acl): every
// occurrence adds one, "none" clears them (sofia.c).
func (p *Profile) ACLs(name string) []Param {
	var out []Param
	for _, x := range p.Params {
		if !strings.EqualFold(x.Name, name) {
			continue
		}
		if strings.EqualFold(strings.TrimSpace(x.Value), "none") {
			out = nil
			continue
		}
		if strings.TrimSpace(x.Value) != "" {
			out = append(out, x)
		}
	}
	return out
}

// User is one directory user with its params and variables merged from
// domain, group and user, the user's own winning (switch_xml_locate_user_merged).
type User struct {
	ID     string
	Domain string
	File   string
	Line   int
	CIDR   string
	Params map[string]Param // key lower-cased
	Vars   map[string]Param // key as written (channel variables are case-sensitive)
}

// switchTrue is FreeSWITCH's switch_true(): yes, on, true, t, enabled,
// active, allow (any case) or a non-zero number.
func switchTrue(v string) bool {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "yes", "on", "true", "t", "enabled", "active", "allow":
		return true
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return n != 0
	}
	return false
}

// config returns the <configuration name=...> element, or nil.
func config(root *Node, name string) *Node {
	for _, c := range root.Find("configuration") {
		if c.Attr("name") == name {
			return c
		}
	}
	return nil
}

func params(n *Node) []Param {
	if n == nil {
		return nil
	}
	var out []Param
	for _, p := range n.All("param") {
		out = append(out, Param{Name: p.Attr("name"), Value: p.Attr("value"), File: p.File, Line: p.Line})
	}
	return out
}

// profiles returns the Sofia profiles, in order.
func profiles(root *Node) []*Profile {
	sofia := config(root, "sofia.conf")
	if sofia == nil {
		return nil
	}
	var out []*Profile
	for _, ps := range sofia.All("profiles") {
		for _, p := range ps.All("profile") {
			out = append(out, &Profile{Name: p.Attr("name"), File: p.File, Line: p.Line, Params: params(p.Child("settings"))})
		}
	}
	return out
}

// users returns every directory user that can authenticate (pointers,
// type="pointer", cannot: sofia_reg.c "Can't register a pointer.").
func users(root *Node) []*User {
	var out []*User
	for _, sec := range root.Find("section") {
		if sec.Attr("name") != "directory" {
			continue
		}
		for _, d := range sec.Find("domain") {
			base := merge(nil, d)
			var walk func(n *Node, inherited [2]map[string]Param)
			walk = func(n *Node, inh [2]map[string]Param) {
				for _, c := range n.Children {
					switch c.Name {
					case "user":
						if strings.EqualFold(c.Attr("type"), "pointer") {
							continue
						}
						m := merge(&inh, c)
						out = append(out, &User{ID: c.Attr("id"), Domain: d.Attr("name"), File: c.File, Line: c.Line, CIDR: c.Attr("cidr"), Params: m[0], Vars: m[1]})
					case "groups", "group", "users":
						walk(c, merge(&inh, c))
					}
				}
			}
			walk(d, base)
		}
	}
	return out
}

// merge returns inherited params and variables overlaid with n's own.
func merge(inh *[2]map[string]Param, n *Node) [2]map[string]Param {
	out := [2]map[string]Param{{}, {}}
	if inh != nil {
		for k, v := range inh[0] {
			out[0][k] = v
		}
		for k, v := range inh[1] {
			out[1][k] = v
		}
	}
	for _, p := range params(n.Child("params")) {
		out[0][strings.ToLower(p.Name)] = p
	}
	if vs := n.Child("variables"); vs != nil {
		for _, v := range vs.All("variable") {
			out[1][v.Attr("name")] = Param{Name: v.Attr("name"), Value: v.Attr("value"), File: v.File, Line: v.Line}
		}
	}
	return out
}
