package web

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/users"
)

// Security keys and passkeys (WebAuthn): registered on the Security page
// by a logged-in user, used at login after the password instead of the
// TOTP code. The ceremonies, their state and the checks live in
// internal/users; this file binds them to requests: which relying party
// a request may use, and which session or login attempt a challenge
// belongs to.

func (c *Console) keyRoutes() {
	c.mux.HandleFunc("POST /ui/login/key/begin", c.keyLoginBegin)
	c.mux.HandleFunc("POST /ui/login/key", c.keyLogin)
	c.mux.HandleFunc("GET /ui/keys", c.withSession(c.listKeys))
	c.mux.HandleFunc("POST /ui/keys/begin", c.withSession(beginCeremony(c, c.auth.BeginAddKey)))
	c.mux.HandleFunc("POST /ui/keys", c.withSession(c.addKey))
	c.mux.HandleFunc("POST /ui/keys/confirm", c.withSession(beginCeremony(c, c.auth.BeginReauth)))
	c.mux.HandleFunc("DELETE /ui/keys/{id}", c.withSession(c.removeKey))
}

// errNoRP explains why security keys are not offered on an address.
var errNoRP = errors.New("security keys are not available at this address: open the console at http://localhost:PORT, or set ui.rp_id and ui.origins to the name it is served on")

// relyingParty returns the WebAuthn relying party r may use. The RP ID is
// never taken from the request: it is ui.rp_id, and the request's origin
// must be one of ui.origins (default https://<rp_id>). Without ui.rp_id
// keys are offered only on plain HTTP at localhost (which hostOK admits,
// unlike other names, against DNS rebinding), RP ID "localhost", and the
// origin's port must be the one the connection arrived on, so a page on
// another local port cannot pass its own origin off as the console's.
// The trade-off: an SSH tunnel to another local port needs ui.rp_id
// "localhost" and that origin in ui.origins.
func (c *Console) relyingParty(r *http.Request) (users.RP, error) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		scheme := "http"
		if c.secure(r) {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	origin = strings.ToLower(origin)
	if id := c.o.UI.RPID; id != "" {
		allowed := c.o.UI.Origins
		if len(allowed) == 0 {
			allowed = []string{"https://" + id}
		}
		for _, o := range allowed {
			if strings.EqualFold(o, origin) {
				return users.RP{ID: id, Origin: strings.ToLower(o)}, nil
			}
		}
		return users.RP{}, fmt.Errorf("security keys are not available at %s: it is not in ui.origins", capString(origin, 100))
	}
	if r.TLS != nil || c.o.UI.SecureCookies {
		return users.RP{}, errNoRP
	}
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil || !strings.EqualFold(host, "localhost") {
		return users.RP{}, errNoRP
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return users.RP{}, errNoRP
	}
	_, port, err := net.SplitHostPort(la.String())
	if err != nil {
		return users.RP{}, errNoRP
	}
	want := "http://localhost:" + port
	if origin != want {
		return users.RP{}, errNoRP
	}
	return users.RP{ID: "localhost", Origin: want}, nil
}

func capString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// sessionBind identifies the session of r's cookie to a ceremony, without
// keeping the token itself.
func sessionBind(r *http.Request) string {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return ""
	}
	h := sha256.Sum256([]byte(ck.Value))
	return "session\x00" + hex.EncodeToString(h[:])
}

// CeremonyReply starts a WebAuthn ceremony: the page passes Options to
// navigator.credentials (get or create) and sends the answer back with
// Ceremony.
type CeremonyReply struct {
	Ceremony string `json:"ceremony"`
	Options  any    `json:"options"`
}

// loginRefused refuses a login request from another origin, or over
// plain HTTP from another host, and reports whether it did.
func (c *Console) loginRefused(w http.ResponseWriter, r *http.Request) bool {
	if !c.originOK(r) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
		return true
	}
	if !c.secure(r) && !remoteAddr(r).IsLoopback() {
		writeError(w, http.StatusForbidden, "log in over HTTPS: plain HTTP is accepted only from this host (see ui.secure_cookies)")
		return true
	}
	return false
}

func (c *Console) keyLoginBegin(w http.ResponseWriter, r *http.Request) {
	if c.loginRefused(w, r) {
		return
	}
	rp, err := c.relyingParty(r)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	id, opts, err := c.auth.BeginKeyLogin(rp, remoteAddr(r))
	if c.ceremonyFailed(w, err) {
		return
	}
	writeJSON(w, http.StatusOK, CeremonyReply{Ceremony: id, Options: opts})
}

// ceremonyFailed answers a failure to start a ceremony.
func (c *Console) ceremonyFailed(w http.ResponseWriter, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, users.ErrBusy):
		writeError(w, http.StatusTooManyRequests, err.Error())
	case errors.Is(err, users.ErrNoKey):
		writeError(w, http.StatusConflict, "you have no security key")
	case errors.Is(err, users.ErrNoUser):
		writeError(w, http.StatusUnauthorized, "session expired; log in again")
	default:
		c.log.Error("security key ceremony", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (see the tollguard log)")
	}
	return true
}

// KeyLoginBody is POST /ui/login/key: the password and the key's answer
// to the ceremony of POST /ui/login/key/begin.
type KeyLoginBody struct {
	Name       string          `json:"name"`
	Password   string          `json:"password"`
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
}

func (c *Console) keyLogin(w http.ResponseWriter, r *http.Request) {
	if c.loginRefused(w, r) {
		return
	}
	var b KeyLoginBody
	if err := api.DecodeJSON(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(b.Name) > users.MaxNameLen || len(b.Password) > 1024 || len(b.Ceremony) > 64 {
		writeError(w, http.StatusUnauthorized, users.ErrLogin.Error())
		return
	}
	// A request that cannot name its relying party cannot have a
	// ceremony either: the empty RP matches none, and the attempt counts.
	rp, _ := c.relyingParty(r)
	u, k, err := c.auth.LoginKey(b.Name, b.Password, b.Ceremony, rp, b.Credential, remoteAddr(r))
	if ce := (*users.CounterError)(nil); errors.As(err, &ce) {
		c.counterWentBack(r, b.Name, "login_refused", ce)
		writeError(w, http.StatusUnauthorized, users.ErrLogin.Error())
		return
	}
	if c.loginFailed(w, r, b.Name, "security key", err) {
		return
	}
	c.startSession(w, r, u, k.ID, fmt.Sprintf("%s, security key %q", u.Role, k.Name))
}

// KeyInfo is one key on the Security page.
type KeyInfo struct {
	// ID is the credential ID, base64url: DELETE /ui/keys/{id}.
	ID   string `json:"id"`
	Name string `json:"name"`
	// RPID is the name the key works at (ui.rp_id, or localhost).
	RPID     string    `json:"rp_id"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	// Current is true for the key this session logged in with.
	Current bool `json:"current,omitempty"`
}

// KeysReply is GET /ui/keys.
type KeysReply struct {
	Keys []KeyInfo `json:"keys"`
	// Available is false when this address cannot use security keys;
	// Reason then says why.
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	Max       int    `json:"max"`
}

func (c *Console) listKeys(w http.ResponseWriter, r *http.Request, s users.Session) {
	u, err := c.o.Users.Get(s.User)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "session expired; log in again")
		return
	}
	out := KeysReply{Keys: []KeyInfo{}, Max: users.MaxKeys}
	for _, k := range u.Keys {
		id := base64.RawURLEncoding.EncodeToString(k.ID)
		out.Keys = append(out.Keys, KeyInfo{ID: id, Name: k.Name, RPID: k.RPID, Created: k.Created, LastUsed: k.LastUsed,
			Current: len(s.Key) > 0 && id == base64.RawURLEncoding.EncodeToString(s.Key)})
	}
	if _, err := c.relyingParty(r); err != nil {
		out.Reason = err.Error()
	} else {
		out.Available = true
	}
	writeJSON(w, http.StatusOK, out)
}

// beginCeremony answers a signed-in user's request to start a security-key
// ceremony: start (registration or a fresh assertion) with the relying
// party this request is served as, bound to the session.
func beginCeremony[T any](c *Console, start func(users.Session, string, users.RP) (string, T, error)) func(http.ResponseWriter, *http.Request, users.Session) {
	return func(w http.ResponseWriter, r *http.Request, s users.Session) {
		rp, err := c.relyingParty(r)
		if err != nil {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		id, opts, err := start(s, sessionBind(r), rp)
		if c.ceremonyFailed(w, err) {
			return
		}
		writeJSON(w, http.StatusOK, CeremonyReply{Ceremony: id, Options: opts})
	}
}

// AddKeyBody is POST /ui/keys: the new key's name and its answer to the
// ceremony of POST /ui/keys/begin.
type AddKeyBody struct {
	Name       string          `json:"name"`
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
}

func (c *Console) addKey(w http.ResponseWriter, r *http.Request, s users.Session) {
	var b AddKeyBody
	if err := api.DecodeJSON(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := users.CheckKeyName(b.Name); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rp, err := c.relyingParty(r)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	k, err := c.auth.FinishAddKey(s, sessionBind(r), b.Ceremony, rp, b.Name, b.Credential)
	if err != nil {
		c.log.Info("security key not registered", "user", s.User, "err", err)
		c.audit(r, s.User, "key_add_failed", "")
		writeError(w, http.StatusBadRequest, "the security key was not registered: "+capString(err.Error(), 200))
		return
	}
	c.audit(r, s.User, "key_add", keyDetail(k))
	writeJSON(w, http.StatusCreated, KeyInfo{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name, RPID: k.RPID, Created: k.Created})
}

// keyDetail names a key in the audit trail: its name (the user's text,
// quoted) and the start of its credential ID.
func keyDetail(k users.Key) string {
	id := base64.RawURLEncoding.EncodeToString(k.ID)
	return fmt.Sprintf("security key %q (id %s)", capString(k.Name, 64), capString(id, 16))
}

// RemoveKeyBody is DELETE /ui/keys/{id}: a fresh second factor, either a
// TOTP code or a key's answer to the ceremony of POST /ui/keys/confirm.
type RemoveKeyBody struct {
	Code       string          `json:"code,omitempty"`
	Ceremony   string          `json:"ceremony,omitempty"`
	Credential json.RawMessage `json:"credential,omitempty"`
}

func (c *Console) removeKey(w http.ResponseWriter, r *http.Request, s users.Session) {
	id, err := base64.RawURLEncoding.DecodeString(r.PathValue("id"))
	if err != nil || len(id) == 0 || len(id) > 1023 {
		writeError(w, http.StatusBadRequest, "not a key ID")
		return
	}
	var b RemoveKeyBody
	if err := api.DecodeJSON(r, &b); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if len(b.Code) > 16 || len(b.Ceremony) > 64 {
		writeError(w, http.StatusForbidden, users.ErrSecondFactor.Error())
		return
	}
	rp, _ := c.relyingParty(r) // a TOTP code needs none
	k, err := c.auth.RemoveKey(s, sessionBind(r), rp, id, users.Proof{Code: strings.TrimSpace(b.Code), Ceremony: b.Ceremony, Credential: b.Credential})
	var ce *users.CounterError
	switch {
	case err == nil:
	case errors.Is(err, users.ErrNoKey):
		writeError(w, http.StatusNotFound, "no such security key")
		return
	case errors.Is(err, users.ErrLocked):
		c.audit(r, s.User, "key_remove_refused", "second factor locked")
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	case errors.As(err, &ce):
		c.counterWentBack(r, s.User, "key_remove_refused", ce)
		writeError(w, http.StatusForbidden, users.ErrSecondFactor.Error())
		return
	case errors.Is(err, users.ErrSecondFactor):
		c.audit(r, s.User, "key_remove_refused", "wrong second factor")
		writeError(w, http.StatusForbidden, err.Error())
		return
	case errors.Is(err, users.ErrNoUser):
		writeError(w, http.StatusUnauthorized, "session expired; log in again")
		return
	default:
		c.log.Error("removing a security key", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (see the tollguard log)")
		return
	}
	c.audit(r, s.User, "key_remove", keyDetail(k))
	writeJSON(w, http.StatusOK, map[string]string{"removed": base64.RawURLEncoding.EncodeToString(k.ID)})
}

// counterWentBack logs and audits (as action, for user) a key refused
// because its signature counter did not advance: a cloned authenticator.
func (c *Console) counterWentBack(r *http.Request, user, action string, ce *users.CounterError) {
	c.log.Warn("security key refused: its signature counter went backwards (a cloned key?)",
		"user", ce.User, "key", fmt.Sprintf("%q", capString(ce.Key, 64)), "stored", ce.Stored, "got", ce.Got, "source", remoteAddr(r).String())
	c.audit(r, user, action, fmt.Sprintf("security key %q: signature counter %d not above %d (cloned key?)", capString(ce.Key, 64), ce.Got, ce.Stored))
}
