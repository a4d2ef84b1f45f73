// Package web is tollguard's operator console: a small single-page
// application embedded in the binary (no CDN, no outside request), its
// login with password and TOTP or a security key (WebAuthn), browser
// sessions with CSRF protection, a live feed of bans (server-sent events)
// and the overview's hourly counts.
// Everything else the pages show comes from the admin API's own routes,
// which the console calls on behalf of the logged-in user.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/users"
)

//go:embed assets
var assets embed.FS

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// Options are the console's dependencies.
type Options struct {
	// Users is the users file; required.
	Users *users.File
	// UI is the ui config section (timeouts, lockout, cookies).
	UI config.UI
	// API is the admin API's handler (api.Server.Handler); the console
	// forwards /ui/api/v1/… to it as the logged-in user. Required.
	API http.Handler
	// Bans lists the bans in force at now, for the live feed. Required.
	Bans func(now time.Time) []decision.Decision
	// Hourly counts events per hour for the overview; nil leaves the
	// overview's charts empty with a notice.
	Hourly store.Aggregator
	// Events reads stored events for the loss page; nil leaves it empty
	// with a notice.
	Events Querier
	// Prices returns the pricer of connected calls from the current
	// call_policy.rates, or nil when there is no rate table (the loss page
	// says so and prices nothing incurred). Called once per loss page; a
	// nil Prices means no rate table.
	Prices func() Pricer
	// Audit records logins, logouts and refused logins; nil records none.
	Audit func(ctx context.Context, a event.Admin)
	// Logger receives the console's log; nil discards it.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// LivePoll is how often the live feed looks for changed bans.
	// Default 500ms (a new ban shows within a second).
	LivePoll time.Duration
}

// Console is the web console. Create it with New and serve Handler under
// Prefix (on the admin listener) or Run it on a listener of its own.
type Console struct {
	o        Options
	log      *slog.Logger
	now      func() time.Time
	auth     *users.Authenticator
	sessions *users.Sessions
	static   fs.FS
	mux      *http.ServeMux
	stop     chan struct{}
	stopOnce sync.Once
}

// New builds the console.
func New(o Options) (*Console, error) {
	if o.Users == nil || o.API == nil || o.Bans == nil {
		return nil, errors.New("web: Users, API and Bans are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LivePoll <= 0 {
		o.LivePoll = 500 * time.Millisecond
	}
	def := config.Default().UI
	if o.UI.IdleTimeout <= 0 {
		o.UI.IdleTimeout = def.IdleTimeout
	}
	if o.UI.SessionMax <= 0 {
		o.UI.SessionMax = def.SessionMax
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	c := &Console{
		o:   o,
		log: o.Logger.With("component", "web"),
		now: o.Now,
		auth: users.NewAuthenticator(o.Users, users.Limits{
			Attempts: o.UI.LoginAttempts, SourceAttempts: o.UI.SourceAttempts,
			Window: o.UI.LockoutWindow.D(), Lockout: o.UI.Lockout.D(),
		}, o.Now),
		sessions: users.NewSessions(o.Users, o.UI.IdleTimeout.D(), o.UI.SessionMax.D(), o.Now),
		static:   static,
		mux:      http.NewServeMux(),
		stop:     make(chan struct{}),
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	c.mux.HandleFunc("GET /ui/{$}", c.serveIndex)
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.HandlerFunc(c.serveStatic)))
	c.mux.HandleFunc("POST /ui/login", c.login)
	c.mux.HandleFunc("POST /ui/logout", c.withSession(c.logout))
	c.mux.HandleFunc("GET /ui/session", c.session)
	c.mux.HandleFunc("GET /ui/live", c.withSession(c.live))
	c.mux.HandleFunc("GET /ui/overview", c.withSession(c.overview))
	c.mux.HandleFunc("GET /ui/loss", c.withSession(c.loss))
	c.keyRoutes()
	c.mux.HandleFunc("/ui/api/", c.withSession(c.forward))
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such page")
	})
}

// Handler serves the console; every path it answers starts with Prefix.
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		if !c.hostOK(r) {
			writeError(w, http.StatusMisdirectedRequest, "open the console by its IP address (or localhost); behind a TLS proxy set ui.secure_cookies")
			return
		}
		if r.URL.Path == "/" || r.URL.Path == "/ui" {
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
			return
		}
		c.mux.ServeHTTP(w, r)
	})
}

// csp allows only the console's own scripts, styles and requests: no
// inline script, no framing (clickjacking), no plugins, no base rewriting.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func (c *Console) serveIndex(w http.ResponseWriter, r *http.Request) {
	data, err := fs.ReadFile(c.static, "index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "console assets missing")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(data)
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path
	if name == "index.html" || strings.HasSuffix(name, "/") {
		writeError(w, http.StatusNotFound, "no such file")
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, c.static, name)
}

// Run serves the console alone on listen (ui.listen) until ctx is done.
// ready, if not nil, is called with the bound address.
func (c *Console) Run(ctx context.Context, listen string, ready func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("web: listening on %s: %w", listen, err)
	}
	srv := &http.Server{
		Handler:           c.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	if ready != nil {
		ready(ln.Addr())
	}
	c.log.Info("console listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	c.Close()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}

// Close ends the live streams (they never finish on their own), so the
// server that hosts the console can shut down. Safe to call twice.
func (c *Console) Close() {
	c.stopOnce.Do(func() { close(c.stop) })
}

// hostOK refuses, on plain HTTP without a TLS proxy in front, a Host that
// is a name other than localhost: a page on an attacker's domain that
// re-resolves it to 127.0.0.1 (DNS rebinding) would otherwise pass the
// Origin check and could guess logins from the operator's own address,
// locking the operator out. Over TLS the certificate pins the name.
func (c *Console) hostOK(r *http.Request) bool {
	if r.TLS != nil || c.o.UI.SecureCookies {
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	_, err := netip.ParseAddr(host)
	return err == nil
}
