package freeswitch

import "strings"

// Unescape percent-decodes s leniently, the way FreeSWITCH's own client does
// (switch_url_decode): a '%' followed by two hex digits is a byte, anything
// else is kept as it is. Unlike url.QueryUnescape it never turns '+' into a
// space and never fails: FreeSWITCH encodes with switch_url_encode, which
// leaves existing "%XX" sequences alone (switch_event_serialize), so a value
// may mix encoded and raw text.
func Unescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
		}
		b = append(b, c)
	}
	return string(b)
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// arrayPrefix marks a multi-valued header (switch_event_serialize writes
// array headers as "ARRAY::a|:b").
const arrayPrefix = "ARRAY::"

// SplitArray returns the elements of a decoded "ARRAY::a|:b" value, or the
// value itself as the only element when it is not an array.
func SplitArray(v string) []string {
	rest, ok := strings.CutPrefix(v, arrayPrefix)
	if !ok {
		return []string{v}
	}
	return strings.Split(rest, "|:")
}
