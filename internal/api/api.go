// Package api is tollguard's admin REST API: the HTTP server, its bearer-token
// authentication, the audit of mutating requests, JSON helpers, and the ban
// routes. Other packages add routes with (*Server).Mount.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tollguard/tollguard/internal/event"
)

// Options configures a Server.
type Options struct {
	// Listen is host:port (admin.listen). Port 0 picks a free port; Addr
	// reports it once Ready is closed.
	Listen string
	// DataDir holds admin.token. It is created (mode 0700) if missing.
	DataDir string
	// Registry is served on /metrics and receives the API's own metrics.
	// Nil means a fresh registry.
	Registry *prometheus.Registry
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// Bans backs the /api/v1/bans routes; nil leaves them unmounted.
	Bans BanService
	// Audit records every authenticated mutating request. It is called
	// once per request, after the handler returned, on the request's
	// goroutine; it must not block for long. Nil disables auditing.
	Audit func(ctx context.Context, a event.Admin)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the admin HTTP server. Create it with New, add routes with
// Mount before Run, then Run it once.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	token   []byte
	tokPath string
	mux     *http.ServeMux
	handler http.Handler
	metrics *metrics

	public []string

	ready   chan struct{}
	addrMu  sync.Mutex
	addr    net.Addr
	started bool
}

// shutdownGrace bounds how long Run waits for requests in flight after ctx
// is done.
const shutdownGrace = 5 * time.Second

// New validates o, loads or creates <DataDir>/admin.token and registers the
// built-in routes (/healthz, /metrics and, with o.Bans, /api/v1/bans). It
// returns an error if the token file cannot be created or is readable by
// anyone but its owner.
func New(o Options) (*Server, error) {
	if o.Listen == "" {
		return nil, errors.New("api: admin listen address is empty")
	}
	if o.DataDir == "" {
		return nil, errors.New("api: data_dir is empty")
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tok, path, err := LoadOrCreateToken(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("api: registering metrics: %w", err)
	}
	s := &Server{
		opts:    o,
		log:     o.Logger.With("component", "api"),
		now:     o.Now,
		token:   tok,
		tokPath: path,
		mux:     http.NewServeMux(),
		metrics: m,
		ready:   make(chan struct{}),
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, "no route for "+r.Method+" "+quoteCap(r.URL.Path, 80))
	})
	if o.Bans != nil {
		s.mountBans(o.Bans)
	}
	s.handler = s.instrument(s.authenticate(s.mux))
	return s, nil
}

// Mount registers h for pattern (a net/http ServeMux pattern such as
// "GET /api/v1/events" or "DELETE /api/v1/bans/{ip}"). Every mounted route
// requires the bearer token; mutating methods are audited. Mount must be
// called before Run; it panics on a conflicting pattern, as ServeMux does.
func (s *Server) Mount(pattern string, h http.HandlerFunc) {
	s.mux.Handle(pattern, h)
}

// MountPublic serves h for every path under prefix (ending in "/", such as
// "/ui/") without the bearer token: h does its own authentication (the
// console's sessions). Like Mount, it must be called before Run.
func (s *Server) MountPublic(prefix string, h http.Handler) {
	s.mux.Handle(prefix, h)
	s.public = append(s.public, prefix)
}

// isPublic reports whether path is under a MountPublic prefix.
func (s *Server) isPublic(path string) bool {
	for _, p := range s.public {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Handler returns the server's whole HTTP handler (authentication, metrics
// and routes), for tests and for embedding behind another listener.
func (s *Server) Handler() http.Handler { return s.handler }

// TokenPath returns the path of the admin token file.
func (s *Server) TokenPath() string { return s.tokPath }

// Ready is closed once Run is listening.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the address Run listens on, or nil before Ready is closed.
func (s *Server) Addr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	return s.addr
}

// Run listens on Options.Listen and serves until ctx is done, then shuts
// down gracefully, letting requests in flight finish for up to 5 s. It
// returns nil after a clean shutdown. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	s.addrMu.Lock()
	if s.started {
		s.addrMu.Unlock()
		return errors.New("api: Run called twice")
	}
	s.started = true
	s.addrMu.Unlock()

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("api: listening on %s: %w", s.opts.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	s.addrMu.Lock()
	s.addr = ln.Addr()
	s.addrMu.Unlock()
	close(s.ready)
	s.log.Info("admin API listening", "addr", ln.Addr().String(), "token_file", s.tokPath)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serving: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("api: shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api: serving: %w", err)
	}
	return nil
}
