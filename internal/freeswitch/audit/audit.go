// Package audit reads a FreeSWITCH configuration directory the way
// FreeSWITCH does (its preprocessor, then the XML) and reports the settings
// that let toll fraud in: profiles that take calls without a password, ACLs
// that grant password-free access to too much (or to the guard), weak or
// default directory passwords, an exposed Event Socket, expiring TLS
// certificates. See README.md for every check and where it comes from.
package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Severity orders findings.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var sevNames = []string{"info", "low", "medium", "high", "critical"}

// String returns the lower-case name.
func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return sevNames[s]
}

// MarshalText renders the name (JSON).
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseSeverity reads info, low, medium, high or critical.
func ParseSeverity(s string) (Severity, error) {
	for i, n := range sevNames {
		if strings.EqualFold(s, n) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (one of %s)", s, strings.Join(sevNames, ", "))
}

// Finding is one problem: what, where, why it lets fraud in, and the fix.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	// Subject names the profile, user, list or file concerned.
	Subject string `json:"subject"`
	Message string `json:"message"`
	Why     string `json:"why"`
	Fix     string `json:"fix"`
}

// Policy is the password policy (config.PasswordPolicy).
type Policy struct {
	// Minimum length.
	Minimum int
	// Strength is how many of digits, lower case, upper case and other
	// characters a password must mix (0 = no requirement).
	Strength int
}

// Options tune an audit.
type Options struct {
	Policy Policy
	// Guard lists the guard's addresses as FreeSWITCH sees them (the
	// source of what it forwards, and its listeners); empty when unknown.
	Guard []netip.Addr
	// Now is the clock for certificate expiry; zero means time.Now().
	Now time.Time
}

// Report is the result of one audit.
type Report struct {
	Dir      string    `json:"dir"`
	Files    []string  `json:"files"`
	Guard    []string  `json:"guard,omitempty"`
	Findings []Finding `json:"findings"`
}

// AtLeast counts findings of severity s or higher.
func (r *Report) AtLeast(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity >= s {
			n++
		}
	}
	return n
}

// rootFile names the synthesised root in findings.
const rootFile = "(root)"

// Run audits the configuration directory dir. It reads freeswitch.xml when
// present, as FreeSWITCH does; otherwise vars.xml, autoload_configs/*.xml,
// sip_profiles/*.xml and directory/*.xml, in the order vanilla's
// freeswitch.xml includes them. An unreadable or hostile tree is an error.
func Run(dir string, o Options) (*Report, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Policy.Minimum == 0 && o.Policy.Strength == 0 {
		o.Policy = Policy{Minimum: 6, Strength: 3}
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	abs, _ := filepath.Abs(dir)
	// Core variables FreeSWITCH defines before reading its configuration.
	seed := map[string]string{"conf_dir": abs, "certs_dir": filepath.Join(abs, "tls")}
	var doc *Doc
	switch {
	case exists(filepath.Join(dir, "freeswitch.xml")):
		doc, err = Preprocess(dir, "freeswitch.xml", seed)
	case exists(filepath.Join(dir, "vars.xml")):
		doc, err = PreprocessBytes(dir, rootFile, syntheticRoot(dir), seed)
	default:
		return nil, fmt.Errorf("%s holds neither freeswitch.xml nor vars.xml: not a FreeSWITCH configuration directory", dir)
	}
	if err != nil {
		return nil, err
	}
	root, err := Parse(doc)
	if err != nil {
		return nil, err
	}
	a := &auditor{dir: abs, doc: doc, root: root, o: o}
	a.run()
	slices.SortStableFunc(a.out, func(x, y Finding) int {
		if x.Severity != y.Severity {
			return int(y.Severity - x.Severity)
		}
		if c := strings.Compare(x.File, y.File); c != 0 {
			return c
		}
		if x.Line != y.Line {
			return x.Line - y.Line
		}
		return strings.Compare(x.Rule, y.Rule)
	})
	r := &Report{Dir: dir, Files: doc.Files, Findings: a.out}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	for _, g := range o.Guard {
		r.Guard = append(r.Guard, g.String())
	}
	return r, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil || !errors.Is(err, fs.ErrNotExist)
}

// syntheticRoot stands in for freeswitch.xml in a directory that only holds
// the files the audit reads.
func syntheticRoot(dir string) []byte {
	var b strings.Builder
	b.WriteString("<document type=\"freeswitch/xml\">\n")
	b.WriteString("<X-PRE-PROCESS cmd=\"include\" data=\"vars.xml\"/>\n")
	b.WriteString("<section name=\"configuration\">\n")
	b.WriteString("<X-PRE-PROCESS cmd=\"include\" data=\"autoload_configs/*.xml\"/>\n")
	if !exists(filepath.Join(dir, "autoload_configs", "sofia.conf.xml")) {
		b.WriteString("<configuration name=\"sofia.conf\"><profiles>\n")
		b.WriteString("<X-PRE-PROCESS cmd=\"include\" data=\"sip_profiles/*.xml\"/>\n")
		b.WriteString("</profiles></configuration>\n")
	}
	b.WriteString("</section>\n<section name=\"directory\">\n")
	b.WriteString("<X-PRE-PROCESS cmd=\"include\" data=\"directory/*.xml\"/>\n")
	b.WriteString("</section>\n</document>\n")
	return []byte(b.String())
}

// GuardAddrs returns the addresses FreeSWITCH sees the guard on, from its
// config: the local address it sends to upstream from (found by routing,
// no packet is sent), advertise, and each listener bound to a specific
// address.
func GuardAddrs(listen []string, upstream, advertise string) []netip.Addr {
	var out []netip.Addr
	add := func(a netip.Addr) {
		a = a.Unmap()
		if a.IsValid() && !a.IsUnspecified() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if u, err := url.Parse(upstream); err == nil && u.Host != "" {
		if c, err := net.Dial("udp", u.Host); err == nil {
			if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
				if a, ok := netip.AddrFromSlice(ua.IP); ok {
					add(a)
				}
			}
			c.Close()
		}
	}
	if a, err := netip.ParseAddr(advertise); err == nil {
		add(a)
	}
	for _, l := range listen {
		if u, err := url.Parse(l); err == nil {
			if a, err := netip.ParseAddr(u.Hostname()); err == nil {
				add(a)
			}
		}
	}
	return out
}
