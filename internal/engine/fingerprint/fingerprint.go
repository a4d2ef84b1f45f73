// Package fingerprint recognises SIP scanners from what their requests carry:
// User-Agent strings of attack tools, their default From display names, and
// probe shapes such as nmap's "OPTIONS sip:nm". The list is data
// (fingerprints.yaml, embedded; config fingerprints.file replaces it).
//
// Strong entries name attack tools and ban at the first packet. Weak entries
// name strings that real products also send; they only add a score.
// Matching is ASCII case-insensitive and does not allocate. An empty field never matches, so an empty User-Agent is never
// hostile by itself.
package fingerprint

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tollguard/tollguard/internal/event"
)

//go:embed fingerprints.yaml
var embedded []byte

// Embedded returns the fingerprint list shipped with tollguard.
func Embedded() []byte { return bytes.Clone(embedded) }

// MaxWeak is how many weak entries a list may hold (one bit each in Result).
const MaxWeak = 64

// Spec is the YAML form of a fingerprint list.
type Spec struct {
	Fingerprints []Entry `yaml:"fingerprints"`
}

// Entry is one fingerprint: it matches when every condition in When does.
type Entry struct {
	Name string `yaml:"name"`
	// Strong entries ban at once; otherwise Score is added to the source's total.
	Strong bool   `yaml:"strong"`
	Score  int    `yaml:"score"`
	When   []Cond `yaml:"when"`
	// Source says where the fingerprint comes from; it is required.
	Source string `yaml:"source"`
}

// Cond tests one field with exactly one of Exact, Prefix or Contains.
type Cond struct {
	Field    string `yaml:"field"`
	Exact    string `yaml:"exact"`
	Prefix   string `yaml:"prefix"`
	Contains string `yaml:"contains"`
}

type field uint8

const (
	fMethod field = iota
	fUserAgent
	fFromName
	fFromUser
	fToUser
	fRURIUser
	nFields
)

var fieldNames = map[string]field{
	"method": fMethod, "user_agent": fUserAgent, "from_name": fFromName,
	"from_user": fFromUser, "to_user": fToUser, "ruri_user": fRURIUser,
}

type op uint8

const (
	opExact op = iota
	opPrefix
	opContains
)

type cond struct {
	f   field
	op  op
	pat []byte // lower case
	id  int    // index in Matcher.contains, for opContains
}

// maxContains bounds the contains conditions of a list (bits in Match).
const maxContains = 256

type entry struct {
	name   string
	strong bool
	score  int
	bit    uint64
	conds  []cond
}

// Matcher is a compiled fingerprint list. It is immutable and safe for
// concurrent use.
type Matcher struct {
	entries []entry
	weak    []entry // by bit index
	// contains holds every contains pattern; firsts indexes them per
	// field by their first byte.
	contains    [][]byte
	firsts      [nFields][256][]int
	hasContains [nFields]bool
}

// Result is what matched in one request.
type Result struct {
	// Strong names the first strong entry that matched, or is empty.
	Strong string
	// Weak has bit i set when weak entry i matched (see Matcher.Score).
	Weak uint64
}

// Compile parses and checks a fingerprint list (name is used in errors).
// Unknown keys, entries without a source and empty patterns are errors.
func Compile(name string, data []byte) (*Matcher, error) {
	var spec Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("fingerprints %s: %w", name, err)
	}
	m := &Matcher{}
	seen := map[string]bool{}
	for i, e := range spec.Fingerprints {
		bad := func(msg string) error {
			return fmt.Errorf("fingerprints %s: entry %d (%q): %s", name, i, e.Name, msg)
		}
		switch {
		case e.Name == "":
			return nil, bad("name is empty")
		case seen[e.Name]:
			return nil, bad("duplicate name")
		case strings.TrimSpace(e.Source) == "":
			return nil, bad("source is empty: say where the fingerprint comes from")
		case len(e.When) == 0:
			return nil, bad("when has no condition")
		case e.Strong && e.Score != 0:
			return nil, bad("a strong entry has no score")
		case !e.Strong && (e.Score < 1 || e.Score > 1000):
			return nil, bad("a weak entry needs a score between 1 and 1000")
		}
		seen[e.Name] = true
		ce := entry{name: e.Name, strong: e.Strong, score: e.Score}
		for _, c := range e.When {
			f, ok := fieldNames[c.Field]
			if !ok {
				return nil, bad(fmt.Sprintf("unknown field %q (method, user_agent, from_name, from_user, to_user, ruri_user)", c.Field))
			}
			var k op
			var pat string
			n := 0
			if c.Exact != "" {
				k, pat, n = opExact, c.Exact, n+1
			}
			if c.Prefix != "" {
				k, pat, n = opPrefix, c.Prefix, n+1
			}
			if c.Contains != "" {
				k, pat, n = opContains, c.Contains, n+1
			}
			if n != 1 {
				return nil, bad("each condition needs exactly one non-empty exact, prefix or contains")
			}
			c := cond{f: f, op: k, pat: lower(nil, pat)}
			if k == opContains {
				if len(m.contains) == maxContains {
					return nil, bad(fmt.Sprintf("more than %d contains conditions", maxContains))
				}
				c.id = len(m.contains)
				m.contains = append(m.contains, c.pat)
				m.firsts[f][c.pat[0]] = append(m.firsts[f][c.pat[0]], c.id)
				m.hasContains[f] = true
			}
			ce.conds = append(ce.conds, c)
		}
		if !e.Strong {
			if len(m.weak) == MaxWeak {
				return nil, bad(fmt.Sprintf("more than %d weak entries", MaxWeak))
			}
			ce.bit = 1 << len(m.weak)
			m.weak = append(m.weak, ce)
		}
		m.entries = append(m.entries, ce)
	}
	if len(m.entries) == 0 {
		return nil, errors.New("fingerprints " + name + ": the list is empty")
	}
	return m, nil
}

// Len returns the number of entries.
func (m *Matcher) Len() int { return len(m.entries) }

// Score returns the sum of the scores of the weak entries in mask.
func (m *Matcher) Score(mask uint64) int {
	s := 0
	for i := range m.weak {
		if mask&m.weak[i].bit != 0 {
			s += m.weak[i].score
		}
	}
	return s
}

// Names returns the names of the weak entries in mask.
func (m *Matcher) Names(mask uint64) []string {
	var out []string
	for i := range m.weak {
		if mask&m.weak[i].bit != 0 {
			out = append(out, m.weak[i].name)
		}
	}
	return out
}

// Match tests s against every entry. It does not allocate: exact and prefix
// conditions compare in place, and all contains conditions of a field are
// found in one pass over it, indexed by their first byte.
func (m *Matcher) Match(s *event.SIP) Result {
	raw := [nFields]string{s.Method, s.UserAgent, s.FromName, s.FromUser, s.ToUser, s.RURIUser}
	var hit [maxContains / 64]uint64
	for f := range nFields {
		v := raw[f]
		if !m.hasContains[f] || v == "" {
			continue
		}
		idx := &m.firsts[f]
		for i := 0; i < len(v); i++ {
			for _, id := range idx[fold(v[i])] {
				p := m.contains[id]
				if len(v)-i >= len(p) && foldEqual(v[i:i+len(p)], p) {
					hit[id/64] |= 1 << (id % 64)
				}
			}
		}
	}
	var r Result
next:
	for i := range m.entries {
		e := &m.entries[i]
		if e.strong && r.Strong != "" {
			continue
		}
		for _, c := range e.conds {
			v := raw[c.f]
			switch c.op {
			case opExact:
				if len(v) != len(c.pat) || !foldEqual(v, c.pat) {
					continue next
				}
			case opPrefix:
				if len(v) < len(c.pat) || !foldEqual(v[:len(c.pat)], c.pat) {
					continue next
				}
			default:
				if hit[c.id/64]&(1<<(c.id%64)) == 0 {
					continue next
				}
			}
		}
		if e.strong {
			r.Strong = e.name
		} else {
			r.Weak |= e.bit
		}
	}
	return r
}

// fold returns c in ASCII lower case.
func fold(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldEqual reports whether v equals the lower-case pat, ignoring ASCII
// case; the lengths must be equal.
func foldEqual(v string, pat []byte) bool {
	for i := 0; i < len(pat); i++ {
		if fold(v[i]) != pat[i] {
			return false
		}
	}
	return true
}

// lower appends the ASCII lower-case form of s to dst.
func lower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
