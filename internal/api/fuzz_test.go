package api_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/api"
)

// FuzzBanBody feeds arbitrary bodies to the ban request parser (DecodeJSON
// then BanBody.Request): it must never panic, and whatever it accepts must
// satisfy the BanService contract.
func FuzzBanBody(f *testing.F) {
	f.Add(`{"ip":"198.51.100.4","account":"1001","for":"7d","reason":"guessing"}`)
	f.Add(`{"ip":"::ffff:10.0.0.1","for":"90m"}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/api/v1/bans", strings.NewReader(body))
		var b api.BanBody
		if err := api.DecodeJSON(r, &b); err != nil {
			return
		}
		req, err := b.Request()
		if err != nil {
			if !utf8.ValidString(err.Error()) && utf8.ValidString(body) {
				t.Errorf("error is not valid UTF-8: %q", err)
			}
			return
		}
		if !req.IP.IsValid() || req.IP.Is4In6() || req.IP.IsUnspecified() || req.IP.Zone() != "" {
			t.Errorf("accepted address %v", req.IP)
		}
		if req.For <= 0 || req.For > api.MaxBanFor {
			t.Errorf("accepted length %v", req.For)
		}
		for _, s := range []string{req.Account, req.Reason} {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("accepted text %q", s)
			}
		}
		if len(req.Account) > api.MaxAccountLen || len(req.Reason) > api.MaxReasonLen {
			t.Errorf("accepted over-long text")
		}
		if _, err := json.Marshal(b); err != nil {
			t.Error(err)
		}
	})
}
