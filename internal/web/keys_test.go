package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/users"
)

// The relying party is bound to configuration, never to what a request
// claims: an attacker's Host, a page on another local port, an address.
func TestKeyRelyingParty(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9061}
	for _, tc := range []struct {
		name   string
		ui     func(*config.UI)
		host   string
		origin string
		tls    bool
		want   users.RP // zero: refused
	}{
		{"localhost, the listener's port", nil, "localhost:9061", "http://localhost:9061", false, users.RP{ID: "localhost", Origin: "http://localhost:9061"}},
		{"localhost without Origin (a GET)", nil, "localhost:9061", "", false, users.RP{ID: "localhost", Origin: "http://localhost:9061"}},
		{"IP address", nil, "127.0.0.1:9061", "http://127.0.0.1:9061", false, users.RP{}},
		{"another local port", nil, "localhost:9061", "http://localhost:3000", false, users.RP{}},
		{"Host forged to another port", nil, "localhost:3000", "http://localhost:3000", false, users.RP{}},
		{"attacker's name", nil, "evil.example:9061", "http://evil.example:9061", false, users.RP{}},
		{"TLS without rp_id", nil, "console.example.com", "https://console.example.com", true, users.RP{}},
		{"proxy without rp_id", func(u *config.UI) { u.SecureCookies = true }, "console.example.com", "https://console.example.com", false, users.RP{}},
		{"rp_id, its origin", func(u *config.UI) { u.RPID = "console.example.com" }, "console.example.com", "https://console.example.com", true,
			users.RP{ID: "console.example.com", Origin: "https://console.example.com"}},
		{"rp_id, origin in other case", func(u *config.UI) { u.RPID = "console.example.com" }, "Console.Example.com", "https://Console.Example.COM", true,
			users.RP{ID: "console.example.com", Origin: "https://console.example.com"}},
		{"rp_id, another origin", func(u *config.UI) { u.RPID = "console.example.com" }, "evil.example", "https://evil.example", true, users.RP{}},
		{"rp_id, Host forged, Origin foreign", func(u *config.UI) { u.RPID = "console.example.com" }, "console.example.com", "https://evil.example", true, users.RP{}},
		{"rp_id, http origin not listed", func(u *config.UI) { u.RPID = "console.example.com" }, "console.example.com", "http://console.example.com", false, users.RP{}},
		{"origins with a port", func(u *config.UI) {
			u.RPID, u.Origins = "example.com", []string{"https://console.example.com:8443"}
		}, "console.example.com:8443", "https://console.example.com:8443", true, users.RP{ID: "example.com", Origin: "https://console.example.com:8443"}},
		{"tunnel to another local port, configured", func(u *config.UI) {
			u.RPID, u.Origins = "localhost", []string{"http://localhost:19061"}
		}, "localhost:19061", "http://localhost:19061", false, users.RP{ID: "localhost", Origin: "http://localhost:19061"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ui := config.Default().UI
			if tc.ui != nil {
				tc.ui(&ui)
			}
			c := &Console{o: Options{UI: ui}}
			r := httptest.NewRequest("POST", "/ui/login/key/begin", nil)
			r.Host = tc.host
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
			got, err := c.relyingParty(r)
			if got != tc.want || (err == nil) != (tc.want != users.RP{}) {
				t.Errorf("relyingParty = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// keyClient talks to the harness at http://localhost:PORT, where keys are
// offered.
func (h *harness) keyClient() (*client, string) {
	c := h.client()
	return c, strings.Replace(h.srv.URL, "127.0.0.1", "localhost", 1)
}

func TestKeyRoutes(t *testing.T) {
	h := newHarness(t, config.UI{})
	u := h.addUser("alice", users.Admin)
	c := h.client()
	// At 127.0.0.1 the page is told keys are not available, and a key
	// login cannot start.
	code, body, _ := c.do("GET", "/ui/session", "", nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, `"keys": false`) {
		t.Errorf("session at 127.0.0.1: %d %s", code, body)
	}
	if code, body, _ := c.do("POST", "/ui/login/key/begin", "{}", nil); code != http.StatusConflict {
		t.Errorf("key login begin at 127.0.0.1: %d %s", code, body)
	}
	// At localhost they are.
	kc, base := h.keyClient()
	send := func(method, path, body string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Origin", base)
		if kc.csrf != "" {
			req.Header.Set(CSRFHeader, kc.csrf)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := kc.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := send("GET", "/ui/session", "", nil); !strings.Contains(body, `"keys": true`) {
		t.Errorf("session at localhost: %d %s", code, body)
	}
	code, body = send("POST", "/ui/login/key/begin", "{}", nil)
	var cer CeremonyReply
	if code != http.StatusOK || json.Unmarshal([]byte(body), &cer) != nil || cer.Ceremony == "" ||
		!strings.Contains(body, `"rpId": "localhost"`) || !strings.Contains(body, `"timeout": 120000`) || strings.Contains(body, "allowCredentials") {
		t.Fatalf("key login begin: %d %s", code, body)
	}
	// From another origin: refused before any ceremony.
	if code, _ := send("POST", "/ui/login/key/begin", "{}", map[string]string{"Origin": "http://localhost:3000"}); code != http.StatusForbidden {
		t.Errorf("cross-origin begin: %d", code)
	}
	// The Security page's routes need a session, and changes the CSRF token.
	if code, _ := send("GET", "/ui/keys", "", nil); code != http.StatusUnauthorized {
		t.Errorf("keys without a session: %d", code)
	}
	body2, _ := json.Marshal(LoginBody{Name: u.Name, Password: testPassword, Code: h.code(u, false)})
	code, body = send("POST", "/ui/login", string(body2), nil)
	var s SessionReply
	if code != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil || !s.Keys {
		t.Fatalf("login at localhost: %d %s", code, body)
	}
	kc.csrf = s.CSRF
	code, body = send("GET", "/ui/keys", "", nil)
	if code != http.StatusOK || !strings.Contains(body, `"available": true`) || !strings.Contains(body, `"keys": []`) {
		t.Errorf("GET keys: %d %s", code, body)
	}
	if code, _ := send("POST", "/ui/keys/begin", "{}", map[string]string{CSRFHeader: "wrong"}); code != http.StatusForbidden {
		t.Errorf("register begin without the CSRF token: %d", code)
	}
	code, body = send("POST", "/ui/keys/begin", "{}", nil)
	if code != http.StatusOK || !strings.Contains(body, `"residentKey": "required"`) || !strings.Contains(body, `"userVerification": "preferred"`) {
		t.Errorf("register begin: %d %s", code, body)
	}
	// A registration answer that is no credential is refused, and audited.
	if code, _ := send("POST", "/ui/keys", `{"name":"k","ceremony":"x","credential":{}}`, nil); code != http.StatusBadRequest {
		t.Errorf("bogus registration: %d", code)
	}
	if code, _ := send("POST", "/ui/keys", `{"name":"bad\u0007name","ceremony":"x","credential":{}}`, nil); code != http.StatusBadRequest {
		t.Errorf("control character in the name: %d", code)
	}
	// Confirming with a key needs a key; removing an unknown one is 404.
	if code, _ := send("POST", "/ui/keys/confirm", "{}", nil); code != http.StatusConflict {
		t.Errorf("confirm without keys: %d", code)
	}
	if code, _ := send("DELETE", "/ui/keys/AAAA", `{"code":"123456"}`, nil); code != http.StatusNotFound {
		t.Errorf("remove an unknown key: %d", code)
	}
	if code, _ := send("DELETE", "/ui/keys/%21%21", `{}`, nil); code != http.StatusBadRequest {
		t.Errorf("remove with a bad ID: %d", code)
	}

	// A bogus answer with the right password: 401, audited, and counted:
	// the fifth failure from this address locks the name out.
	for i := range 5 {
		b, _ := json.Marshal(KeyLoginBody{Name: "alice", Password: testPassword, Ceremony: cer.Ceremony, Credential: json.RawMessage(`{"id":"AAAA"}`)})
		if code, body := send("POST", "/ui/login/key", string(b), nil); code != http.StatusUnauthorized {
			t.Fatalf("bogus assertion %d: %d %s", i, code, body)
		}
	}
	b, _ := json.Marshal(KeyLoginBody{Name: "alice", Password: testPassword, Ceremony: "x", Credential: json.RawMessage(`{}`)})
	if code, _ := send("POST", "/ui/login/key", string(b), nil); code != http.StatusTooManyRequests {
		t.Errorf("after 5 failures: %d, want 429", code)
	}
	if n := strings.Count(strings.Join(adminActions(t, h, "alice"), "\n"), "login_failed security key"); n != 5 {
		t.Errorf("%d failed key logins audited, want 5", n)
	}
}
