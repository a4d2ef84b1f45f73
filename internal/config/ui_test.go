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
