package detector

import (
	"strings"
)

// MaxName caps a normalised name: longer attacker text is cut, so a huge
// user part cannot grow state.
const MaxName = 128

// Names is a small set of distinct non-empty names, in insertion order. It
// does not allocate.
type Names struct {
	v [3]string
	n int
}

// Add adds s (already normalised) unless it is empty, present, or the set
// is full.
func (n *Names) Add(s string) {
	if s == "" || n.Has(s) || n.n == len(n.v) {
		return
	}
	n.v[n.n] = s
	n.n++
}

// Has reports whether s is in the set.
func (n *Names) Has(s string) bool {
	for _, x := range n.v[:n.n] {
		if x == s {
			return true
		}
	}
	return false
}

// Len returns how many names the set holds.
func (n *Names) Len() int { return n.n }

// At returns the i-th name.
func (n *Names) At(i int) string { return n.v[i] }

// First returns the first name, or "".
func (n *Names) First() string {
	if n.n == 0 {
		return ""
	}
	return n.v[0]
}

// Normalize returns the canonical form of an account or user name, so that
// one account has one identity whatever spelling a request uses: %-escapes
// decoded (RFC 3261 §19.1.2 allows them in the user part), NUL bytes
// removed, surrounding whitespace trimmed, ASCII letters lower-cased, at
// most MaxName bytes. A name already canonical is returned as is without
// allocating.
func Normalize(s string) string {
	if canonical(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
			c = byte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		}
		if c == 0 {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	out := strings.TrimSpace(string(b))
	if len(out) > MaxName {
		out = out[:MaxName]
	}
	return out
}

// canonical reports whether Normalize would return s unchanged.
func canonical(s string) bool {
	if len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == 0 || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	if s != "" && (isSpace(s[0]) || isSpace(s[len(s)-1])) {
		return false
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
