package config

import (
	"fmt"
	"net"
	"time"
)

// UI configures the web console.
type UI struct {
	// Listen is host:port of a listener for the console alone; empty
	// serves it on admin.listen under /ui/. Default empty.
	Listen string `yaml:"listen"`
	// IdleTimeout ends a session unused for this long. Default 30m.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// SessionMax ends any session this old. Default 12h.
	SessionMax Duration `yaml:"session_max"`
	// SecureCookies marks session cookies Secure even on plain HTTP: set it
	// when a TLS reverse proxy on the same host fronts the console. Over
	// TLS they are always Secure. Default false.
	SecureCookies bool `yaml:"secure_cookies"`
	// LoginAttempts is how many failed logins one user name may have from
	// one address within LockoutWindow before that pair is locked out.
	// Default 5.
	LoginAttempts int `yaml:"login_attempts"`
	// SourceAttempts is how many failed logins one address may have within
	// LockoutWindow, whatever the names. Default 20.
	SourceAttempts int `yaml:"source_attempts"`
	// LockoutWindow is the counting window and Lockout how long a lockout
	// lasts. Defaults 15m and 15m.
	LockoutWindow Duration `yaml:"lockout_window"`
	Lockout       Duration `yaml:"lockout"`
}

// defaultUI is the ui section's default.
func defaultUI() UI {
	return UI{
		IdleTimeout: Duration(30 * time.Minute), SessionMax: Duration(12 * time.Hour),
		LoginAttempts: 5, SourceAttempts: 20,
		LockoutWindow: Duration(15 * time.Minute), Lockout: Duration(15 * time.Minute),
	}
}

// validate checks the ui section.
func (u UI) validate() error {
	bad := func(path, msg, hint string) error { return &Error{Path: "ui." + path, Msg: msg, Hint: hint} }
	if u.Listen != "" {
		if _, _, err := net.SplitHostPort(u.Listen); err != nil {
			return bad("listen", fmt.Sprintf("%q is not host:port", u.Listen), "e.g. 127.0.0.1:9062, or empty to serve on admin.listen")
		}
	}
	if u.IdleTimeout < Duration(time.Minute) || u.SessionMax < u.IdleTimeout {
		return bad("idle_timeout", "must be at least 1m and at most session_max", "defaults: idle_timeout 30m, session_max 12h")
	}
	if u.LoginAttempts < 1 || u.SourceAttempts < u.LoginAttempts {
		return bad("login_attempts", "must be at least 1 and at most source_attempts", "defaults: login_attempts 5, source_attempts 20")
	}
	if u.LockoutWindow <= 0 || u.Lockout <= 0 {
		return bad("lockout", "lockout_window and lockout must be positive", "defaults: 15m and 15m")
	}
	return nil
}
