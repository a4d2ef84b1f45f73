package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/users"
)

// CookieName is the session cookie.
const CookieName = "tollguard_session"

// CSRFHeader carries the session's CSRF token on every change.
const CSRFHeader = "X-CSRF-Token"

func writeJSON(w http.ResponseWriter, code int, v any) { api.WriteJSON(w, code, v) }

func writeError(w http.ResponseWriter, code int, msg string) { api.WriteError(w, code, msg) }

// remoteAddr returns r's peer address, unmapped; invalid if unparsable.
func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return decision.Unmap(ap.Addr())
}

// secure reports whether cookies must be Secure: over TLS, or when a TLS
// reverse proxy fronts the console (ui.secure_cookies).
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.o.UI.SecureCookies }

// originOK checks that a state-changing request comes from the console's
// own origin: Origin must be present and name this host. Browsers always
// send Origin on POST and DELETE from fetch; a missing one is refused.
func (c *Console) originOK(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" {
		return false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if r.TLS != nil {
			return false
		}
	default:
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// LoginBody is POST /ui/login.
type LoginBody struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Code     string `json:"code"`
}

// SessionReply is the answer to a login and to GET /ui/session.
type SessionReply struct {
	User string     `json:"user,omitempty"`
	Role users.Role `json:"role,omitempty"`
	// CSRF is the token to send in X-CSRF-Token with every change.
	CSRF string `json:"csrf,omitempty"`
	// Lang is the language the browser prefers among the console's
	// (from Accept-Language): "en" or "zh-CN".
	Lang string `json:"lang"`
	// Keys is true when security keys can be used at this address (see
	// relyingParty): the login page offers "Use a security key".
	Keys bool `json:"keys"`
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.loginRefused(w, r) {
		return
	}
	src := remoteAddr(r)
	var b LoginBody
	if err := api.DecodeJSON(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(b.Name) > users.MaxNameLen || len(b.Password) > 1024 || len(b.Code) > 16 {
		writeError(w, http.StatusUnauthorized, users.ErrLogin.Error())
		return
	}
	u, err := c.auth.Login(b.Name, b.Password, strings.TrimSpace(b.Code), src)
	if c.loginFailed(w, r, b.Name, "", err) {
		return
	}
	c.startSession(w, r, u, nil, string(u.Role))
}

// startSession logs u in after a successful login (with the security key
// key, or TOTP when nil): a new session and cookie, an audit record with
// detail, and the session reply.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, u users.User, key []byte, detail string) {
	// A session cookie the browser already had is dropped: the new token
	// is fresh (no session fixation).
	if old, err := r.Cookie(CookieName); err == nil {
		c.sessions.Revoke(old.Value)
	}
	tok, sess, err := c.sessions.Create(u, key)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error (see the tollguard log)")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: tok, Path: Prefix, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode,
	})
	c.audit(r, u.Name, "login", detail)
	writeJSON(w, http.StatusOK, c.sessionReply(r, sess))
}

// sessionReply describes sess (zero: nobody) to the page.
func (c *Console) sessionReply(r *http.Request, sess users.Session) SessionReply {
	_, err := c.relyingParty(r)
	return SessionReply{User: sess.User, Role: sess.Role, CSRF: sess.CSRF, Lang: preferredLang(r), Keys: err == nil}
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s users.Session) {
	if ck, err := r.Cookie(CookieName); err == nil {
		c.sessions.Revoke(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteStrictMode})
	c.audit(r, s.User, "logout", "")
	writeJSON(w, http.StatusOK, c.sessionReply(r, users.Session{}))
}

// session answers who is logged in, or 401 with the preferred language
// for the login page.
func (c *Console) session(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(CookieName)
	var s users.Session
	if err == nil {
		s, err = c.sessions.Get(ck.Value, true)
	}
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, c.sessionReply(r, users.Session{}))
		return
	}
	writeJSON(w, http.StatusOK, c.sessionReply(r, s))
}

// withSession requires a valid session, and on every method but GET and
// HEAD the console's Origin and the session's CSRF token (constant-time
// compare). The live stream does not count as activity for the idle
// timeout.
func (c *Console) withSession(h func(http.ResponseWriter, *http.Request, users.Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(CookieName)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "not logged in")
			return
		}
		s, err := c.sessions.Get(ck.Value, r.URL.Path != "/ui/live")
		if err != nil {
			writeError(w, http.StatusUnauthorized, "session expired; log in again")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !c.originOK(r) {
				writeError(w, http.StatusForbidden, "cross-origin request refused")
				return
			}
			got := r.Header.Get(CSRFHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
				writeError(w, http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
		}
		h(w, r, s)
	}
}

// required returns the least role that may make request r to the admin
// API: reading is for viewers, except unmasking phone numbers; bans and
// unbans, hangups and the lockdown switch are for operators; any other
// change (backups, call deadlines, call tokens) for admins.
func required(method, path string, q url.Values) users.Role {
	if method == http.MethodGet || method == http.MethodHead {
		if v := q.Get("unmask"); v != "" && v != "false" && v != "0" {
			return users.Operator
		}
		return users.Viewer
	}
	if path == "/api/v1/bans" && method == http.MethodPost ||
		strings.HasPrefix(path, "/api/v1/bans/") && method == http.MethodDelete ||
		path == "/api/v1/lockdown" && method == http.MethodPut ||
		strings.HasPrefix(path, "/api/v1/calls/") && strings.HasSuffix(path, "/hangup") && method == http.MethodPost {
		return users.Operator
	}
	return users.Admin
}

// forward hands /ui/api/v1/… to the admin API as the session's user, once
// the role allows it. The API records the user as the actor.
func (c *Console) forward(w http.ResponseWriter, r *http.Request, s users.Session) {
	path := strings.TrimPrefix(r.URL.Path, "/ui")
	if !strings.HasPrefix(path, "/api/v1/") {
		writeError(w, http.StatusNotFound, "no such route")
		return
	}
	if need := required(r.Method, path, r.URL.Query()); !s.Role.AtLeast(need) {
		writeError(w, http.StatusForbidden, "your role ("+string(s.Role)+") may not do this; it needs "+string(need))
		return
	}
	r2 := r.Clone(api.WithOperator(r.Context(), s.User))
	r2.URL.Path, r2.URL.RawPath = path, ""
	r2.RequestURI = ""
	r2.Header.Del("Authorization")
	r2.Header.Del("Cookie")
	c.o.API.ServeHTTP(w, r2)
}

// audit records a login event. name is client text (a refused login's
// name): it is capped and the store keeps it as data.
func (c *Console) audit(r *http.Request, name, action, detail string) {
	if c.o.Audit == nil {
		return
	}
	if len(name) > users.MaxNameLen {
		name = name[:users.MaxNameLen]
	}
	if api.CheckText("name", name, users.MaxNameLen) != nil {
		name = "(unprintable)"
	}
	a := event.Admin{Actor: name + "@" + remoteAddr(r).String(), Action: action, Target: "console", Detail: detail}
	a.Time = c.now()
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		a.Source = netip.AddrPortFrom(decision.Unmap(ap.Addr()), ap.Port())
	}
	a.Listener = "console"
	c.o.Audit(context.WithoutCancel(r.Context()), a)
}

// preferredLang picks "zh-CN" or "en" from Accept-Language, by q-value.
func preferredLang(r *http.Request) string {
	best, bestQ := "en", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if err := json.Unmarshal([]byte(v), &q); err != nil {
				continue
			}
		}
		tag = strings.ToLower(tag)
		lang := ""
		switch {
		case tag == "zh" || strings.HasPrefix(tag, "zh-"):
			lang = "zh-CN"
		case tag == "en" || strings.HasPrefix(tag, "en-"):
			lang = "en"
		}
		if lang != "" && q > bestQ {
			best, bestQ = lang, q
		}
	}
	return best
}

// loginFailed answers and audits a failed login of name (detail says how
// it was tried) and reports whether err was a failure: locked out (429),
// wrong credentials (401) or an internal error (500, logged).
func (c *Console) loginFailed(w http.ResponseWriter, r *http.Request, name, detail string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, users.ErrLocked):
		c.audit(r, name, "login_refused", "locked out")
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, users.ErrLogin):
		c.audit(r, name, "login_failed", detail)
		writeError(w, http.StatusUnauthorized, err.Error())
	default:
		c.log.Error("login failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (see the tollguard log)")
	}
	return true
}
