package config

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic, must
// return either a valid config or an error naming the file, and a config it
// accepts must validate again.
func FuzzParse(f *testing.F) {
	f.Add([]byte("sip:\n  listen: [\"udp://0.0.0.0:5060\"]\n  upstream: udp://127.0.0.1:5080\n"))
	f.Add([]byte("jail:\n  register_failure:\n    - {findtime: 60s, maxretry: 3, banmode: ip_account, bantime: 180s}\n"))
	f.Add([]byte("allow: [203.0.113.0/24, \"::ffff:198.51.100.0/120\"]\nstore: {retention: 180d}\n"))
	f.Add([]byte("flood: {window: 2s, limit: 200, ipv6_prefix: 64}\nhoneypot: {accounts: [\"9999\"]}\n"))
	f.Add([]byte("bogus: 1\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err != nil {
			var ce *Error
			if errors.As(err, &ce) && ce.File != "fuzz.yaml" {
				t.Fatalf("error does not name the file: %v", err)
			}
			if cfg != nil {
				t.Fatalf("Parse returned a config with an error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
	})
}
