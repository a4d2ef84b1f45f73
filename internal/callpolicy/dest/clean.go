package dest

import (
	"net/url"
	"strings"
)

// MaxInputLen is the longest raw destination, in bytes, that is looked at.
// A SIP Request-URI user part or a dialled string is far shorter; anything
// longer is classified as not a phone number without further work.
const MaxInputLen = 256

// maxDigits bounds the digits kept from an input: E.164 allows 15 after the
// country code's "+", and an outside-line prefix plus an international
// prefix add at most a handful.
const maxDigits = 24

// cleaned is a dial string reduced to its digits.
type cleaned struct {
	plus   bool
	n      int
	digits [maxDigits]byte
}

func (c *cleaned) String() string { return string(c.digits[:c.n]) }

// clean reduces raw to an optional leading "+" and ASCII digits. It accepts
// the forms a PBX or a phone writes a number in: a sip:, sips: or tel: URI
// (the user part is kept, parameters dropped), %-escapes (decoded once),
// visual separators, full-width and Arabic-Indic digits. It returns a kind
// other than KindNumber with a reason when raw is not a dialled number.
func clean(raw string) (c cleaned, kind Kind, reason string) {
	if len(raw) > MaxInputLen {
		return c, KindInvalid, "longer than 256 bytes"
	}
	s := strings.TrimFunc(raw, isSpace)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	s = userPart(s)
	if strings.IndexByte(s, '%') >= 0 {
		u, err := url.PathUnescape(s)
		if err != nil {
			return c, KindInvalid, "malformed %-escape"
		}
		if strings.IndexByte(u, '%') >= 0 {
			return c, KindInvalid, "%-escaped more than once"
		}
		s = u
	}
	s = strings.TrimFunc(s, isSpace)
	feature := false
	for i, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			return c, KindInvalid, "control character"
		case r == '+' || r == '\uff0b':
			if i != 0 {
				return c, KindInvalid, "'+' after the first character"
			}
			c.plus = true
		case r == '*' || r == '#' || r == '\uff0a' || r == '\uff03':
			feature = true
		case isSeparator(r):
		default:
			d, ok := digit(r)
			if !ok {
				return c, KindInvalid, "characters other than digits"
			}
			if c.n == maxDigits {
				return c, KindInvalid, "too many digits for a phone number"
			}
			c.digits[c.n] = d
			c.n++
		}
	}
	switch {
	case feature:
		return c, KindInternal, "feature code (* or #)"
	case c.n == 0:
		return c, KindInvalid, "no digits"
	}
	return c, KindNumber, ""
}

// userPart returns the user part of a sip:, sips: or tel: URI, or s itself
// when it is not one. RFC 3966 §3 puts tel: parameters after ';'; RFC 3261
// §19.1.1 puts the user before '@', and a telephone-subscriber user part may
// carry ';' parameters of its own.
func userPart(s string) string {
	lower := func(p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }
	switch {
	case lower("sip:"):
		s = s[4:]
	case lower("sips:"):
		s = s[5:]
	case lower("tel:"):
		s = s[4:]
	}
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return s
}

// isSpace reports the blanks a number may be padded with.
func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\u00a0', '\u3000':
		return true
	}
	return false
}

// isSeparator reports the visual separators of RFC 3966 §3 (visual-separator:
// "-" / "." / "(" / ")") and their common look-alikes.
func isSeparator(r rune) bool {
	switch r {
	case ' ', '\t', '-', '.', '(', ')', '/', '\u00a0', '\u3000',
		'\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212',
		'\uff0d', '\uff0e', '\uff08', '\uff09':
		return true
	}
	return false
}

// digit maps the decimal digits a dial string is seen with (ASCII,
// full-width, Arabic-Indic, Extended Arabic-Indic) to ASCII.
func digit(r rune) (byte, bool) {
	for _, zero := range [...]rune{'0', '\uff10', '\u0660', '\u06f0'} {
		if r >= zero && r <= zero+9 {
			return byte('0' + r - zero), true
		}
	}
	return 0, false
}
