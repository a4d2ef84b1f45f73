package intel

import (
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/decision/screen"
)

func validEntry(t *testing.T, p netip.Prefix) {
	t.Helper()
	if !p.IsValid() || p != screen.Norm(p) || p.Addr().Is4In6() {
		t.Fatalf("accepted %v", p)
	}
}

// FuzzParseCIDR: a plain list from an outside server never panics, and
// every entry it yields is a valid, normalised prefix within the caps.
func FuzzParseCIDR(f *testing.F) {
	f.Add([]byte("# c\n192.0.2.1\n203.0.113.0/24 ; SBL1\n2001:db8::/32,x\n::ffff:1.2.3.4\n"))
	f.Add([]byte("<html>\n"))
	f.Add([]byte("fe80::1%eth0\n1.2.3.4/33\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, _, err := parseCIDR(b, 100)
		if err != nil {
			return
		}
		if len(es) > 100 {
			t.Fatalf("%d entries over the cap", len(es))
		}
		for _, p := range es {
			validEntry(t, p)
		}
	})
}

// FuzzParseAPIBAN: an APIBAN document never panics the parser.
func FuzzParseAPIBAN(f *testing.F) {
	f.Add([]byte(`{"ipaddress":["192.0.2.1","2001:db8::1"],"ID":"12"}`))
	f.Add([]byte(`{"ipaddress":["no new bans"],"ID":"none"}`))
	f.Add([]byte(`{"ipaddress":"rate limit exceeded","ID":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, id, _, _, err := parseAPIBAN(b, 100)
		if err != nil {
			return
		}
		if len(id) > 64 || len(es) > 100 {
			t.Fatalf("accepted id %q and %d entries", id, len(es))
		}
		for _, p := range es {
			validEntry(t, p)
		}
	})
}

// FuzzParseStream: a CrowdSec decision stream never panics the parser,
// and every accepted ban lies in the future.
func FuzzParseStream(f *testing.F) {
	f.Add([]byte(`{"new":[{"duration":"3h59m58s","id":1,"origin":"crowdsec","scenario":"s","scope":"Ip","type":"ban","value":"192.0.2.1"}],"deleted":[]}`))
	f.Add([]byte(`{"new":null,"deleted":[{"duration":"-1s","scope":"Range","type":"ban","value":"192.0.2.0/24"}]}`))
	f.Add([]byte(`{"new":[{"duration":"1h","scope":"Ip","type":"ban","value":"192.0.2.0/24"}]}`))
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		added, deleted, _, _, err := parseStream(b, now, 100)
		if err != nil {
			return
		}
		for _, e := range added {
			validEntry(t, e.prefix)
			if !e.until.After(now) {
				t.Fatalf("accepted a ban that ended already: %+v", e)
			}
		}
		for _, e := range deleted {
			validEntry(t, e.prefix)
		}
	})
}
