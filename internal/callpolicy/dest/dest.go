// Package dest reads a dialled destination the way a call rule needs it: one
// E.164 number whatever form it was dialled in, with its country, number
// type and destination classes. It does no I/O and holds no per-call state
// beyond a bounded cache.
package dest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Kind says what a destination is.
type Kind uint8

// The kinds of destination.
const (
	// KindInvalid is not a phone number: letters, control bytes, a
	// malformed escape, too long, or digits no numbering plan accepts.
	KindInvalid Kind = iota
	// KindInternal stays on the PBX: an extension (no more than
	// Options.ExtensionDigits digits, no "+") or a feature code with * or #.
	KindInternal
	// KindNumber is a public phone number; Result.E164 is set.
	KindNumber
)

// String names the kind: "invalid", "internal" or "number".
func (k Kind) String() string {
	switch k {
	case KindInternal:
		return "internal"
	case KindNumber:
		return "number"
	}
	return "invalid"
}

// Type is the number type from the numbering plan's metadata.
type Type uint8

// The number types, as libphonenumber distinguishes them.
const (
	TypeUnknown Type = iota
	TypeFixed
	TypeMobile
	TypeFixedOrMobile
	TypeTollFree
	TypePremiumRate
	TypeSharedCost
	TypeVoIP
	TypePersonal
	TypePager
	TypeUAN
	TypeVoicemail
)

var typeNames = [...]string{"unknown", "fixed", "mobile", "fixed_or_mobile", "toll_free",
	"premium_rate", "shared_cost", "voip", "personal", "pager", "uan", "voicemail"}

// String names the type in snake case ("premium_rate").
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

func typeOf(t phonenumbers.PhoneNumberType) Type {
	switch t {
	case phonenumbers.FIXED_LINE:
		return TypeFixed
	case phonenumbers.MOBILE:
		return TypeMobile
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return TypeFixedOrMobile
	case phonenumbers.TOLL_FREE:
		return TypeTollFree
	case phonenumbers.PREMIUM_RATE:
		return TypePremiumRate
	case phonenumbers.SHARED_COST:
		return TypeSharedCost
	case phonenumbers.VOIP:
		return TypeVoIP
	case phonenumbers.PERSONAL_NUMBER:
		return TypePersonal
	case phonenumbers.PAGER:
		return TypePager
	case phonenumbers.UAN:
		return TypeUAN
	case phonenumbers.VOICEMAIL:
		return TypeVoicemail
	}
	return TypeUnknown
}

// Result is what Normalize learns about one destination.
type Result struct {
	Kind Kind
	// E164 is "+" and the digits ("+447911123456"), set for KindNumber.
	E164 string
	// Country is the ISO 3166-1 alpha-2 region ("GB", "GG", "CN"); empty for
	// non-geographic codes (+800, +881, +979) and unknown ranges.
	Country string
	// CallingCode is the country calling code (44, 881).
	CallingCode int
	Type        Type
	// Valid reports that the numbering plan assigns the range. An invalid
	// number keeps its E164 and classes: rules still match it.
	Valid   bool
	Classes Class
	// Reason says why Kind is not KindNumber, for logs and events.
	Reason string
}

// Options configure a Normalizer.
type Options struct {
	// DefaultCountry is the ISO region national numbers are read in ("CN").
	DefaultCountry string
	// OutsidePrefixes are PBX outside-line prefixes ("9", "0") stripped
	// when the rest is a number and the whole is not.
	OutsidePrefixes []string
	// InternationalPrefixes are international (IDD) prefixes tried besides
	// the default country's own, so "00", "011" and "+" forms of one number
	// match the same rule whichever the dial plan routes. nil means "00" and
	// "011"; an empty slice means none. A reading through them is only taken
	// when the number as dialled is not a valid national number.
	InternationalPrefixes []string
	// ExtensionDigits is the longest all-digit string read as an internal
	// extension; 0 means 6, negative means none.
	ExtensionDigits int
	// Table holds the prefix classes; nil means HighRiskTable.
	Table *Table
	// CacheSize bounds the results kept; 0 means 4096, negative none.
	CacheSize int
}

// Normalizer turns dialled strings into Results. It is safe for concurrent
// use.
type Normalizer struct {
	region      string
	cc          int
	outside     []string
	idd         []string
	extDigits   int
	table       *Table
	cache       *cache
	nationalNDD string
	ownIDD      string
	allIDD      []string // idd and ownIDD, without duplicates
	sharedCode  bool     // other regions use cc too
}

// New checks opts and returns a Normalizer.
func New(opts Options) (*Normalizer, error) {
	region := strings.ToUpper(strings.TrimSpace(opts.DefaultCountry))
	cc := phonenumbers.GetCountryCodeForRegion(region)
	if cc == 0 {
		return nil, fmt.Errorf("default country %q is not an ISO 3166 region with a calling code (use CN, US, GB…)", opts.DefaultCountry)
	}
	n := &Normalizer{region: region, cc: cc, extDigits: opts.ExtensionDigits, table: opts.Table,
		nationalNDD: phonenumbers.GetNddPrefixForRegion(region, true), ownIDD: iddOf(region)}
	if n.extDigits == 0 {
		n.extDigits = 6
	}
	for _, p := range opts.OutsidePrefixes {
		if !allDigits(p) || len(p) > 4 {
			return nil, fmt.Errorf("outside-line prefix %q: want 1 to 4 digits", p)
		}
		n.outside = append(n.outside, p)
	}
	idd := opts.InternationalPrefixes
	if idd == nil {
		idd = []string{"00", "011"}
	}
	for _, p := range idd {
		if !allDigits(p) || len(p) > 4 {
			return nil, fmt.Errorf("international prefix %q: want 1 to 4 digits", p)
		}
		n.idd = append(n.idd, p)
	}
	n.sharedCode = len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 1
	n.allIDD = slices.Clone(n.idd)
	if n.ownIDD != "" && !slices.Contains(n.allIDD, n.ownIDD) {
		n.allIDD = append(n.allIDD, n.ownIDD)
	}
	if n.table == nil {
		t, err := HighRiskTable()
		if err != nil {
			return nil, fmt.Errorf("loading the shipped class table: %w", err)
		}
		n.table = t
	}
	size := opts.CacheSize
	if size == 0 {
		size = 4096
	}
	if size > 0 {
		n.cache = newCache(size)
	}
	return n, nil
}

// DefaultCountry returns the region national numbers are read in.
func (n *Normalizer) DefaultCountry() string { return n.region }

// Normalize classifies raw, a dialled string, a Request-URI user part or a
// sip:/tel: URI. It never fails: what is not a public number comes back as
// KindInvalid or KindInternal with a Reason.
func (n *Normalizer) Normalize(raw string) Result {
	if n.cache != nil && len(raw) <= maxCachedKey {
		if r, ok := n.cache.get(raw); ok {
			return r
		}
	}
	r := n.normalize(raw)
	if n.cache != nil && len(raw) <= maxCachedKey {
		// Clone: raw is often a slice of a whole SIP message, which the
		// cache must not keep alive.
		n.cache.put(strings.Clone(raw), r)
	}
	return r
}

func (n *Normalizer) normalize(raw string) Result {
	c, kind, reason := clean(raw)
	if kind != KindNumber {
		return Result{Kind: kind, Reason: reason}
	}
	digits := c.String()
	if !c.plus && len(digits) <= n.extDigits {
		return Result{Kind: KindInternal, Reason: "extension (" + strconv.Itoa(len(digits)) + " digits)"}
	}
	num, typ, err := n.parse(c.plus, digits)
	if err != nil {
		return Result{Kind: KindInvalid, Reason: err.Error()}
	}
	return n.describe(num, typ)
}

// parse picks the reading of digits that a switch would dial. Candidates are
// the digits as dialled, then with each outside-line prefix removed, each
// also with an extra international prefix turned into "+". The first valid
// number wins; failing that, the first whose country code was dialled
// explicitly (so an unassigned foreign range still counts as international);
// failing that, the first that parses.
func (n *Normalizer) parse(plus bool, digits string) (*phonenumbers.PhoneNumber, phonenumbers.PhoneNumberType, error) {
	var cands [16]string
	k := 0
	if plus {
		// "+" then an international prefix ("+0044…") is a dial string
		// some PBXs still route; read it both ways like any other.
		cands[0], k = "+"+digits, 1
		for _, p := range n.allIDD {
			if k < len(cands) && len(digits) > len(p) && strings.HasPrefix(digits, p) {
				cands[k] = "+" + digits[len(p):]
				k++
			}
		}
		return n.pick(cands[:k])
	}
	add := func(s string) {
		if k < len(cands) && s != "" {
			cands[k] = s
			k++
		}
		for _, p := range n.idd {
			if k < len(cands) && len(s) > len(p) && strings.HasPrefix(s, p) {
				cands[k] = "+" + s[len(p):]
				k++
			}
		}
	}
	add(digits)
	for _, p := range n.outside {
		if len(digits) > len(p)+n.extDigits && strings.HasPrefix(digits, p) {
			add(digits[len(p):])
		}
	}
	return n.pick(cands[:k])
}

// pick parses each candidate and chooses as parse documents.
func (n *Normalizer) pick(cands []string) (*phonenumbers.PhoneNumber, phonenumbers.PhoneNumberType, error) {
	var explicit, first *phonenumbers.PhoneNumber
	var firstErr error
	for _, s := range cands {
		num, err := phonenumbers.ParseAndKeepRawInput(s, n.region)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		// GetNumberType is UNKNOWN exactly when IsValidNumber is false,
		// and costs one region lookup instead of two.
		if t := phonenumbers.GetNumberType(num); t != phonenumbers.UNKNOWN {
			return num, t, nil
		}
		if explicit == nil && num.GetCountryCodeSource() != phonenumbers.PhoneNumber_FROM_DEFAULT_COUNTRY {
			explicit = num
		}
		if first == nil {
			first = num
		}
	}
	switch {
	case explicit != nil:
		return explicit, phonenumbers.UNKNOWN, nil
	case first != nil:
		return first, phonenumbers.UNKNOWN, nil
	}
	return nil, 0, fmt.Errorf("not a phone number: %w", firstErr)
}

func (n *Normalizer) describe(num *phonenumbers.PhoneNumber, typ phonenumbers.PhoneNumberType) Result {
	r := Result{Kind: KindNumber, CallingCode: int(num.GetCountryCode())}
	nsn := phonenumbers.GetNationalSignificantNumber(num)
	if r.CallingCode <= 0 || strings.Trim(nsn, "0") == "" || !allDigits(nsn) || len(nsn)+len(strconv.Itoa(r.CallingCode)) > 15 {
		return Result{Kind: KindInvalid, Reason: "not a phone number: no subscriber digits or longer than E.164 allows"}
	}
	r.E164 = "+" + strconv.Itoa(r.CallingCode) + nsn
	r.Valid = typ != phonenumbers.UNKNOWN
	r.Type = typeOf(typ)
	region := phonenumbers.GetRegionCodeForNumber(num)
	if len(region) == 2 && region != "ZZ" {
		r.Country = region
	}
	switch {
	case r.CallingCode != n.cc:
		r.Classes |= International
	case r.Country != "" && r.Country != n.region:
		r.Classes |= International
	case r.Country == "" && n.sharedCode:
		// A number the metadata cannot place, behind a code several
		// countries share (+1, +7, +44…), may be a new foreign range:
		// count it international rather than let it past the rule. It
		// is not a valid number, so such a call rarely connects anyway.
		r.Classes |= International
	}
	if r.Type == TypePremiumRate {
		r.Classes |= Premium
	}
	r.Classes |= n.table.lookup(r.E164[1:])
	return r
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
