package config

import (
	"strings"
	"testing"
	"time"
)

func TestUIValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*UI)
		want string // substring of the error; empty = valid
	}{
		{"default", func(*UI) {}, ""},
		{"own listener", func(u *UI) { u.Listen = "127.0.0.1:9062" }, ""},
		{"bad listener", func(u *UI) { u.Listen = "9062" }, "ui.listen"},
		{"idle too short", func(u *UI) { u.IdleTimeout = Duration(time.Second) }, "ui.idle_timeout"},
		{"idle past max", func(u *UI) { u.IdleTimeout = Duration(13 * time.Hour) }, "ui.idle_timeout"},
		{"no attempts", func(u *UI) { u.LoginAttempts = 0 }, "ui.login_attempts"},
		{"source below user", func(u *UI) { u.SourceAttempts = 2 }, "ui.login_attempts"},
		{"no lockout", func(u *UI) { u.Lockout = 0 }, "ui.lockout"},
		{"rp id", func(u *UI) { u.RPID = "console.example.com" }, ""},
		{"rp id and origins", func(u *UI) {
			u.RPID, u.Origins = "example.com", []string{"https://console.example.com:8443", "https://example.com", "http://localhost:9061"}
		}, "ui.origins[2]"},
		{"localhost origin", func(u *UI) { u.RPID, u.Origins = "localhost", []string{"http://localhost:9061"} }, ""},
		{"rp id is an address", func(u *UI) { u.RPID = "127.0.0.1" }, "ui.rp_id"},
		{"rp id with port", func(u *UI) { u.RPID = "console.example.com:443" }, "ui.rp_id"},
		{"rp id with scheme", func(u *UI) { u.RPID = "https://console.example.com" }, "ui.rp_id"},
		{"rp id upper case", func(u *UI) { u.RPID = "Console.example.com" }, "ui.rp_id"},
		{"origins without rp id", func(u *UI) { u.Origins = []string{"https://console.example.com"} }, "ui.origins"},
		{"origin on another name", func(u *UI) { u.RPID, u.Origins = "example.com", []string{"https://example.com.evil.net"} }, "ui.origins[0]"},
		{"origin suffix trick", func(u *UI) { u.RPID, u.Origins = "example.com", []string{"https://badexample.com"} }, "ui.origins[0]"},
		{"plain http origin", func(u *UI) { u.RPID, u.Origins = "example.com", []string{"http://example.com"} }, "ui.origins[0]"},
		{"origin with path", func(u *UI) { u.RPID, u.Origins = "example.com", []string{"https://example.com/ui/"} }, "ui.origins[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c.UI)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
