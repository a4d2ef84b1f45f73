package dest

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Pattern is one entry of a rule's destination list, compiled: a class
// set, or an E.164 prefix. Bare "+" and "00" (and the default country's own
// international prefix) mean "any international destination", since that is
// what an operator writing them means once numbers are normalised.
type Pattern struct {
	// Prefix is "+" and digits; empty when the pattern is a class.
	Prefix string
	// Class is set when the pattern names classes.
	Class Class
}

// ParsePattern compiles s: a class name (international, premium, satellite,
// high_risk), an E.164 prefix ("+44"), a prefix written with an
// international prefix ("0044", "01144" from US) or in national form
// ("010" in CN → "+8610").
func (n *Normalizer) ParsePattern(s string) (Pattern, error) {
	s = strings.TrimSpace(s)
	if c, err := ParseClass(s); err == nil {
		return Pattern{Class: c}, nil
	}
	idd := append([]string{"00"}, n.idd...)
	if n.ownIDD != "" {
		idd = append(idd, n.ownIDD)
	}
	if s == "+" {
		return Pattern{Class: International}, nil
	}
	for _, p := range idd {
		if s == p {
			return Pattern{Class: International}, nil
		}
	}
	switch {
	case strings.HasPrefix(s, "+") && allDigits(s[1:]):
		if !isE164Prefix(s) {
			return Pattern{}, fmt.Errorf("destination prefix %q: want + and 1 to 15 digits, not starting with 0", s)
		}
		return Pattern{Prefix: s}, nil
	case allDigits(s):
		for _, p := range idd {
			if strings.HasPrefix(s, p) && isE164Prefix("+"+s[len(p):]) {
				return Pattern{Prefix: "+" + s[len(p):]}, nil
			}
		}
		if n.nationalNDD != "" && strings.HasPrefix(s, n.nationalNDD) && len(s) > len(n.nationalNDD) {
			return Pattern{Prefix: fmt.Sprintf("+%d%s", n.cc, s[len(n.nationalNDD):])}, nil
		}
	}
	return Pattern{}, fmt.Errorf("destination %q: want a class (international, premium, satellite, high_risk) or a prefix (+44, 0044, or a national prefix for %s)", s, n.region)
}

// Match reports whether r is a public number the pattern covers.
func (p Pattern) Match(r Result) bool {
	if r.Kind != KindNumber {
		return false
	}
	if p.Prefix != "" {
		return strings.HasPrefix(r.E164, p.Prefix)
	}
	return r.Classes&p.Class != 0
}

// String renders the pattern as ParsePattern reads it back.
func (p Pattern) String() string {
	if p.Prefix != "" {
		return p.Prefix
	}
	return p.Class.String()
}

// iddOf returns the international prefix dialled from region ("00" in CN,
// "011" in US), read off the library's out-of-country format, or "".
func iddOf(region string) string {
	target := "DE"
	if region == target {
		target = "FR"
	}
	ex := phonenumbers.GetExampleNumber(target)
	if ex == nil {
		return ""
	}
	s := phonenumbers.FormatOutOfCountryCallingNumber(ex, region)
	i := strings.IndexByte(s, ' ')
	if i <= 0 || !allDigits(s[:i]) {
		return ""
	}
	return s[:i]
}
