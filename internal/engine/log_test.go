package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
)

// The ban line names its target once quoted, by the handler: not
// "\"1001@…\"" in text nor a JSON string holding quotes; attacker bytes
// in the account are still escaped.
func TestBanLogQuotesTargetOnce(t *testing.T) {
	cases := []struct {
		name, account string
		json          bool
		want          string
	}{
		{"text", "1001", false, "target=1001@198.51.100.7 "},
		{"text, hostile account", "10 01\x1b[2j\u202e", false, `target="10 01\x1b[2j\u202e@198.51.100.7" `},
		{"json", "1001", true, `"target":"1001@198.51.100.7"`},
		{"json, hostile account", "1001\x1b", true, `"target":"1001\u001b@198.51.100.7"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Parse("test.yaml", []byte("jail:\n  register_failure:\n    - {findtime: 1h, maxretry: 3, banmode: ip_account, bantime: 60s}\n"))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			log := slog.New(slog.NewTextHandler(&out, nil))
			if c.json {
				log = slog.New(slog.NewJSONHandler(&out, nil))
			}
			set := decision.NewSet()
			e, err := New(cfg, Options{Set: set, Apply: set, Now: func() time.Time { return t0 }, Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				e.Check(context.Background(), authFail("198.51.100.7:5060", c.account, t0.Add(time.Duration(i)*time.Second)))
			}
			line := out.String()
			if !strings.Contains(line, c.want) {
				t.Fatalf("ban log lacks %s:\n%s", c.want, line)
			}
			if c.json && !json.Valid(bytes.TrimSpace([]byte(line))) {
				t.Errorf("not one JSON line: %s", line)
			}
		})
	}
}
