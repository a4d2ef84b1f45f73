package api

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// openPaths need no token: liveness probes and Prometheus scrapers.
var openPaths = map[string]bool{"/healthz": true, "/metrics": true}

// authenticate requires "Authorization: Bearer <token>" on every path but
// openPaths (unknown paths included, so an unauthenticated client learns
// nothing about the routes), and audits mutating requests once the handler
// has run.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if openPaths[r.URL.Path] || s.isPublic(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		_, console := r.Context().Value(operatorKey{}).(string)
		if !console && !s.tokenOK(r.Header.Get("Authorization")) {
			s.metrics.authFailures.Inc()
			s.log.Warn("admin API request refused: missing or wrong token",
				"remote", r.RemoteAddr, "method", capText(r.Method, 16), "path", capText(r.URL.Path, 80))
			w.Header().Set("WWW-Authenticate", `Bearer realm="tollguard"`)
			WriteError(w, http.StatusUnauthorized, "missing or wrong admin token (send Authorization: Bearer <contents of "+TokenFile+">)")
			return
		}
		if !mutating(r.Method) || s.opts.Audit == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := &auditRecord{}
		sw := &statusWriter{ResponseWriter: w}
		// The mux records the matched pattern on the request it is given.
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, rec))
		next.ServeHTTP(sw, r)
		s.audit(r, rec, sw.status())
	})
}

// tokenOK compares the presented bearer token in constant time.
func (s *Server) tokenOK(h string) bool {
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(h[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), s.token) == 1
}

func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// Actor returns the identity recorded for r's operator: "token@" and the
// remote address, without port ("token@127.0.0.1"), or for a console user
// the name given to WithOperator ("alice@127.0.0.1").
func Actor(r *http.Request) string {
	if name, ok := r.Context().Value(operatorKey{}).(string); ok {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			return name + "@" + decision.Unmap(ap.Addr()).String()
		}
		return name + "@" + r.RemoteAddr
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return "token@" + decision.Unmap(ap.Addr()).String()
	}
	return "token@" + r.RemoteAddr
}

type auditKey struct{}

// auditRecord is filled by a handler through Annotate.
type auditRecord struct {
	action, target, detail string
}

// Annotate describes the current mutating request for the audit log:
// action ("ban", "unban", "lockdown"), target ("203.0.113.7") and a short
// detail. Handlers call it once they know what they did; without it the
// audit records the route pattern. It is a no-op outside an audited request.
func Annotate(r *http.Request, action, target, detail string) {
	if rec, ok := r.Context().Value(auditKey{}).(*auditRecord); ok {
		rec.action, rec.target, rec.detail = action, target, detail
	}
}

// audit hands one event.Admin to Options.Audit.
func (s *Server) audit(r *http.Request, rec *auditRecord, code int) {
	action := rec.action
	if action == "" {
		action = r.Pattern
		if action == "" {
			action = r.Method + " " + capText(r.URL.Path, 80)
		}
	}
	detail := rec.detail
	if code >= 300 {
		detail = strings.TrimSpace(detail + " status=" + http.StatusText(code))
	}
	a := event.Admin{
		Actor:  Actor(r),
		Action: action,
		Target: rec.target,
		Detail: detail,
	}
	a.Time = s.now()
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a.Source = netip.AddrPortFrom(decision.Unmap(ap.Addr()), ap.Port())
	}
	a.Listener = "admin"
	// The audit must survive a client that hung up after the change was made.
	s.opts.Audit(context.WithoutCancel(r.Context()), a)
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

type operatorKey struct{}

// WithOperator marks a request as made by a console user the caller has
// already authenticated (a session, its role and CSRF token checked):
// Handler serves it without a bearer token and Actor names the user. Only
// code in the daemon can set a context value, so a remote client cannot
// claim an identity this way.
func WithOperator(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, operatorKey{}, name)
}
