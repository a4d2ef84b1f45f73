package dest

import (
	"strings"
	"testing"
)

func newCN(t testing.TB) *Normalizer {
	t.Helper()
	n, err := New(Options{DefaultCountry: "CN", OutsidePrefixes: []string{"9"}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSameNumberManyWays: the "same number written four ways" and
// the forms an attacker uses to dodge a prefix rule all give one result.
func TestSameNumberManyWays(t *testing.T) {
	n := newCN(t)
	want := n.Normalize("+447400123456")
	if want.Kind != KindNumber || want.E164 != "+447400123456" || want.Country != "GB" ||
		want.Type != TypeMobile || !want.Classes.Has(International) {
		t.Fatalf("reference number: %+v", want)
	}
	for _, in := range []string{
		"+44 7400 123456",
		"0044 7400 123456",
		"00447400123456",
		"011447400123456",     // US-style international prefix
		"9 00 44 7400 123456", // outside-line 9
		"9011447400123456",    // outside-line 9 and 011
		"  +447400123456  ",   // padding
		"\u3000+447400123456", // ideographic space
		"%2B447400123456",     // escaped +
		"sip:%2B447400123456@pbx.example.com;user=phone",
		"<sip:+447400123456@pbx.example.com>",
		"sips:0044-7400-123456@pbx.example.com",
		"tel:+44-7400-123456;phone-context=+44",
		"TEL:+44.7400.123456",
		"+44 (0) 7400 123456",                                                            // not valid E.164 writing, but common: the national 0 is dropped
		"\uff0b\uff14\uff14\uff17\uff14\uff10\uff10\uff11\uff12\uff13\uff14\uff15\uff16", // full-width
		"+44\u20117400\u2011123456",                                                      // non-breaking hyphens
	} {
		got := n.Normalize(in)
		if got != want {
			t.Errorf("Normalize(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	cn := newCN(t)
	us, err := New(Options{DefaultCountry: "us"})
	if err != nil {
		t.Fatal(err)
	}
	gb, err := New(Options{DefaultCountry: "GB", OutsidePrefixes: []string{"9"}})
	if err != nil {
		t.Fatal(err)
	}
	ru, err := New(Options{DefaultCountry: "RU"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		n       *Normalizer
		in      string
		kind    Kind
		e164    string
		country string
		cc      int
		typ     Type
		classes Class
	}{
		{"CN mobile national", cn, "138 1234 5678", KindNumber, "+8613812345678", "CN", 86, TypeMobile, 0},
		{"CN Beijing fixed with trunk 0", cn, "010-1234 5678", KindNumber, "+861012345678", "CN", 86, TypeFixed, 0},
		{"CN outside 9 then national", cn, "9 13812345678", KindNumber, "+8613812345678", "CN", 86, TypeMobile, 0},
		{"CN to US", cn, "0012125550123", KindNumber, "+12125550123", "US", 1, TypeFixedOrMobile, International},
		{"US national", us, "(212) 555-0123", KindNumber, "+12125550123", "US", 1, TypeFixedOrMobile, 0},
		{"US 1+ national", us, "1 212 555 0123", KindNumber, "+12125550123", "US", 1, TypeFixedOrMobile, 0},
		{"US premium 900", us, "1-900-555-1234", KindNumber, "+19005551234", "US", 1, TypePremiumRate, Premium},
		{"US toll free", us, "1-800-555-0199", KindNumber, "+18005550199", "US", 1, TypeTollFree, 0},
		{"US to Jamaica is international", us, "1 876 555 1234", KindNumber, "+18765551234", "JM", 1, TypeMobile, International},
		{"US invalid number in a JM area code is international", us, "1 876 000 0000", KindNumber, "+18760000000", "JM", 1, TypeUnknown, International},
		{"US unplaceable NANP number is international", us, "1 999 555 0123", KindNumber, "+19995550123", "", 1, TypeUnknown, International},
		{"CN invalid national number stays domestic", cn, "1999999999999", KindNumber, "+861999999999999", "CN", 86, TypeUnknown, 0},
		{"US to Grenada NANP high risk", us, "1 473 405 1234", KindNumber, "+14734051234", "GD", 1, TypeMobile, International | HighRisk},
		{"US 011 Cuba", us, "011 53 5 234 5678", KindNumber, "+5352345678", "CU", 53, TypeMobile, International | HighRisk},
		{"GB premium 09", gb, "09001234567", KindNumber, "+449001234567", "GB", 44, TypePremiumRate, Premium},
		{"GB 0845 service number is premium in the metadata", gb, "0845 464 0000", KindNumber, "+448454640000", "GB", 44, TypePremiumRate, Premium},
		{"GB to Guernsey behind +44", gb, "07781 123456", KindNumber, "+447781123456", "GG", 44, TypeMobile, International},
		{"GB Leeds 0113 is not read as 011 3…", gb, "0113 496 0000", KindNumber, "+441134960000", "GB", 44, TypeFixed, 0},
		{"GB Bristol 0117", gb, "0117 496 0000", KindNumber, "+441174960000", "GB", 44, TypeFixed, 0},
		{"US 00 international", us, "00 44 7400 123456", KindNumber, "+447400123456", "GB", 44, TypeMobile, International},
		{"GB national mobile", gb, "07400 123456", KindNumber, "+447400123456", "GB", 44, TypeMobile, 0},
		{"RU to Kazakhstan behind +7", ru, "+7 701 234 5678", KindNumber, "+77012345678", "KZ", 7, TypeMobile, International},
		{"Iridium satellite", cn, "00881612345678", KindNumber, "+881612345678", "", 881, TypeMobile, International | Satellite},
		{"Thuraya", cn, "+88216 1234 5678", KindNumber, "+8821612345678", "", 882, TypeVoIP, International | Satellite},
		{"Inmarsat", cn, "+870 773 112345", KindNumber, "+870773112345", "", 870, TypeMobile, International | Satellite},
		{"+883 network", cn, "+883 5100 0000 0000", KindNumber, "+883510000000000", "", 883, TypeVoIP, International | Satellite},
		{"IPRS +979", cn, "+979 1 2345 6789", KindNumber, "+979123456789", "", 979, TypePremiumRate, International | Premium | HighRisk},
		{"UIFN toll free", cn, "00800 1234 5678", KindNumber, "+80012345678", "", 800, TypeTollFree, International},
		{"Latvia", cn, "+371 2123 4567", KindNumber, "+37121234567", "LV", 371, TypeMobile, International | HighRisk},
		{"Somalia", cn, "+252 61 1234567", KindNumber, "+252611234567", "SO", 252, TypeMobile, International | HighRisk},
		{"unassigned foreign range still international", cn, "0044 1 234", KindNumber, "+441234", "", 44, TypeUnknown, International},
		{"extension", cn, "1001", KindInternal, "", "", 0, TypeUnknown, 0},
		{"sip extension", cn, "sip:1001@pbx.example.com", KindInternal, "", "", 0, TypeUnknown, 0},
		{"feature code", cn, "*72", KindInternal, "", "", 0, TypeUnknown, 0},
		{"feature code with number", cn, "*7213812345678", KindInternal, "", "", 0, TypeUnknown, 0},
		{"voicemail #", cn, "#98", KindInternal, "", "", 0, TypeUnknown, 0},
		{"letters", cn, "alice", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"vanity letters", us, "1-800-FLOWERS", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"NUL", cn, "0044\x007400123456", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"escaped NUL", cn, "0044%007400123456", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"double escape", cn, "%252B447400123456", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"bad escape", cn, "%2G447400123456", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"plus in the middle", cn, "00+447400123456", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"empty", cn, "", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"only separators", cn, "--()--", KindInvalid, "", "", 0, TypeUnknown, 0},
		{"too long", cn, strings.Repeat("1", 300), KindInvalid, "", "", 0, TypeUnknown, 0},
		{"too many digits", cn, strings.Repeat("1", 40), KindInvalid, "", "", 0, TypeUnknown, 0},
		{"invalid country code", cn, "+0123456789", KindInvalid, "", "", 0, TypeUnknown, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.n.Normalize(tc.in)
			if r.Kind != tc.kind || r.E164 != tc.e164 || r.Country != tc.country || r.CallingCode != tc.cc ||
				r.Type != tc.typ || r.Classes != tc.classes {
				t.Errorf("Normalize(%q) = %+v (classes %q), want kind %v %s %s cc %d %v classes %q",
					tc.in, r, r.Classes, tc.kind, tc.e164, tc.country, tc.cc, tc.typ, tc.classes)
			}
			if r.Kind != KindNumber && r.Reason == "" {
				t.Errorf("Normalize(%q): kind %v without a reason", tc.in, r.Kind)
			}
		})
	}
}

// TestNationalNumberNotStripped: an outside-line prefix is only removed when
// the number as dialled is not valid, so a national number starting with
// that digit is read as dialled.
func TestNationalNumberNotStripped(t *testing.T) {
	n, err := New(Options{DefaultCountry: "CN", OutsidePrefixes: []string{"0"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := n.Normalize("01012345678"); r.E164 != "+861012345678" {
		t.Errorf("Beijing number with outside prefix 0 configured: %+v", r)
	}
	if r := n.Normalize("000447400123456"); r.E164 != "+447400123456" {
		t.Errorf("outside 0 then 00: %+v", r)
	}
}

func TestNoInternationalPrefixes(t *testing.T) {
	n, err := New(Options{DefaultCountry: "CN", InternationalPrefixes: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if r := n.Normalize("011447400123456"); r.Classes.Has(International) {
		t.Errorf("011 read as international with no extra prefixes: %+v", r)
	}
	if r := n.Normalize("00447400123456"); r.E164 != "+447400123456" {
		t.Errorf("the country's own 00 must still work: %+v", r)
	}
}

func TestNewRejects(t *testing.T) {
	for _, o := range []Options{
		{DefaultCountry: ""},
		{DefaultCountry: "XX"},
		{DefaultCountry: "CN", OutsidePrefixes: []string{"9a"}},
		{DefaultCountry: "CN", OutsidePrefixes: []string{""}},
		{DefaultCountry: "CN", InternationalPrefixes: []string{"+"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	n, err := New(Options{DefaultCountry: "CN", CacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		n.Normalize("13812" + strings.Repeat("0", 2) + string(rune('0'+i%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i/100)) + "5")
	}
	if l := n.cache.len(); l > 100 || l == 0 {
		t.Errorf("cache holds %d entries, want 1..100", l)
	}
	// A cached answer equals a fresh one.
	fresh, err := New(Options{DefaultCountry: "CN", CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if a, b := n.Normalize("+5352345678"), fresh.Normalize("+5352345678"); a != b {
			t.Errorf("cached %+v, fresh %+v", a, b)
		}
	}
}

func TestClassString(t *testing.T) {
	c := International | HighRisk
	if c.String() != "international,high_risk" {
		t.Errorf("String = %q", c.String())
	}
	for _, s := range []string{"international", "premium", "satellite", "high_risk"} {
		c, err := ParseClass(s)
		if err != nil || c.String() != s {
			t.Errorf("ParseClass(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseClass("expensive"); err == nil {
		t.Error("unknown class accepted")
	}
	if !c.Has(HighRisk) || c.Has(Premium) || c.Has(0) {
		t.Error("Has is wrong")
	}
}

// TestConcurrent: one Normalizer serves every INVITE; run under -race.
func TestConcurrent(t *testing.T) {
	n, err := New(Options{DefaultCountry: "CN", OutsidePrefixes: []string{"9"}, CacheSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	want := n.Normalize("+447400123456")
	ins := []string{"+447400123456", "0044 7400 123456", "+0044 7400 123456", "9 011 44 7400 123456", "%2B447400123456"}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				if got := n.Normalize(ins[(g+i)%len(ins)]); got != want {
					t.Errorf("Normalize(%q) = %+v", ins[(g+i)%len(ins)], got)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}
