package sipfw

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/event"
)

// FuzzExtractSIP feeds raw messages to the tap's header extraction: it
// must never panic, and every field it copies must respect maxField.
func FuzzExtractSIP(f *testing.F) {
	f.Add([]byte(crlf(invite(mustAP("127.0.0.10:5060"), "1001", "0044", "c1", "User-Agent: friendly-scanner\nProxy-Authorization: Digest username=\"1001\", nonce=\"x\"\n"))))
	f.Add([]byte(crlf("SIP/2.0 401 Unauthorized\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@b>;tag=1\nTo: <sip:a@b>\nCall-ID: x\nCSeq: 1 REGISTER\nWWW-Authenticate: Digest realm=\"r\", stale=TRUE, nonce=\"n\"\nContent-Length: 0\n\n")))
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *sip.Request:
			var s event.SIP
			extractSIP(m, &s)
			for _, v := range []string{s.Method, s.CallID, s.FromUser, s.FromName, s.ToUser, s.RURIUser, s.UserAgent, s.AuthUser, s.Instance} {
				if len(v) > maxField {
					t.Fatalf("field of %d bytes exceeds the cap", len(v))
				}
			}
			if len(s.Path) > 8 {
				t.Fatalf("Path has %d hops", len(s.Path))
			}
			_ = requestExpires(m)
		case *sip.Response:
			_ = isStale(m)
			_ = grantedExpires(m, -1)
		}
		_ = digestParam(string(data), "username")
	})
}

// TestDigestParam pins the credential and challenge parsing the tap uses.
func TestDigestParam(t *testing.T) {
	tests := []struct {
		name, in, param, want string
	}{
		{"quoted username", `Digest username="1001", realm="pbx"`, "username", "1001"},
		{"unquoted stale", `Digest realm="pbx", stale=true, nonce="n"`, "stale", "true"},
		{"case-insensitive name", `Digest STALE=TRUE`, "stale", "TRUE"},
		{"not a suffix of another param", `Digest xusername="evil", username="1002"`, "username", "1002"},
		{"absent", `Digest realm="pbx"`, "username", ""},
		{"unterminated quote", `Digest username="100`, "username", "100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := digestParam(tc.in, tc.param); got != tc.want {
				t.Errorf("digestParam(%q, %q) = %q, want %q", tc.in, tc.param, got, tc.want)
			}
		})
	}
}
