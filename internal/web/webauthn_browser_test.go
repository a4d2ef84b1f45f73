package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/store"
	"github.com/tollguard/tollguard/internal/testpeer"
	"github.com/tollguard/tollguard/internal/users"
)

// addAuthenticator attaches a virtual CTAP2 platform authenticator with
// resident keys and user verification (it always verifies) to the tab,
// holding creds, and returns its ID.
func addAuthenticator(t *testing.T, ctx context.Context, creds ...*webauthn.Credential) webauthn.AuthenticatorID {
	t.Helper()
	r, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("adding a virtual authenticator: %v", err)
	}
	for _, c := range creds {
		p := addCredentialParams{AuthenticatorID: r.AuthenticatorID, Credential: vcred{CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential,
			RpID: c.RpID, PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount}}
		if _, err := chromedp.Call(ctx, addCredential, p); err != nil {
			t.Fatalf("adding a credential to the virtual authenticator: %v", err)
		}
	}
	return r.AuthenticatorID
}

// addCredential is WebAuthn.addCredential with only the fields of a
// plain credential: Chromium 156 refuses any CMTG field, even false,
// which cdproto's Credential always sends.
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      vcred                    `json:"credential"`
}

type vcred struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
}

func removeAuthenticator(t *testing.T, ctx context.Context, id webauthn.AuthenticatorID) {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id}); err != nil {
		t.Fatal(err)
	}
}

// keyLoginUI fills name and password and signs in with a security key.
func keyLoginUI(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	testpeer.Step(t, ctx, "signing in with a security key", 10*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#login-key")),
		chromedp.SetValue(chromedp.CSS("#login-name"), name),
		chromedp.SetValue(chromedp.CSS("#login-password"), testPassword),
		chromedp.Click(chromedp.CSS("#login-key")),
	)
}

// adminActions returns "action detail" of every audit record of actor.
func adminActions(t *testing.T, h *harness, actor string) []string {
	t.Helper()
	h.st.Flush(context.Background())
	recs, err := h.st.Query(context.Background(), store.Filter{Kinds: []event.Kind{event.KindAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if a := r.Event.(*event.Admin); strings.HasPrefix(a.Actor, actor+"@") {
			out = append(out, a.Action+" "+a.Detail)
		}
	}
	return out
}

// TestBrowserSecurityKeys drives WebAuthn end to end in Chromium with the
// DevTools virtual authenticator: a key registered after a TOTP login,
// a login with password and key (no code), refusals of a different
// authenticator and of a clone whose counter went backwards, and the
// key's removal confirmed with the key.
func TestBrowserSecurityKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	h := newHarness(t, config.UI{})
	u := h.addUser("kim", users.Operator)
	shots := testpeer.ScreenshotDir(t)
	t.Logf("screenshots in %s", shots)
	ctx := testpeer.Chromium(t, 1280, 900)
	// Browsers refuse IP addresses as RP IDs: on 127.0.0.1 the console
	// does not offer keys; at localhost it does.
	testpeer.Step(t, ctx, "opening the console by address", 15*time.Second, chromedp.Navigate(h.srv.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if !testpeer.Eval[bool](t, ctx, `document.getElementById("login-key").hidden`) {
		t.Error("security keys offered at 127.0.0.1")
	}
	base := strings.Replace(h.srv.URL, "127.0.0.1", "localhost", 1)
	testpeer.Step(t, ctx, "opening the console at localhost", 15*time.Second, chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#login-key")))
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	authA := addAuthenticator(t, ctx)

	// Password and TOTP, then register a key on the Security page.
	testpeer.ConsoleLogin(t, ctx, "kim", testPassword, h.code(u, false))
	testpeer.Step(t, ctx, "logged in with TOTP", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#logout")))
	testpeer.Step(t, ctx, "security page", 10*time.Second, chromedp.Navigate(base+"/ui/#security"), chromedp.WaitVisible(chromedp.CSS("#key-add-form")))
	testpeer.Step(t, ctx, "registering a key", 15*time.Second,
		chromedp.SetValue(chromedp.CSS("#key-name"), "laptop <b>key</b>"),
		chromedp.Click(chromedp.CSS("#key-add")),
		chromedp.WaitVisible(chromedp.CSS(`button.key-remove[data-name="laptop <b>key</b>"]`)))
	stored, err := h.users.Get("kim")
	if err != nil || len(stored.Keys) != 1 || stored.Keys[0].Name != "laptop <b>key</b>" {
		t.Fatalf("stored keys after registration: %+v %v", stored.Keys, err)
	}
	totpStep := stored.LastStep
	creds, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authA})
	if err != nil || len(creds.Credentials) != 1 || !creds.Credentials[0].IsResidentCredential ||
		!bytes.Equal(creds.Credentials[0].CredentialID, stored.Keys[0].ID) || creds.Credentials[0].RpID != "localhost" {
		t.Fatalf("virtual authenticator after registration: %+v %v", creds, err)
	}
	if got := testpeer.Eval[string](t, ctx, `document.querySelector("#keys-list tbody tr").textContent`); !strings.Contains(got, "laptop <b>key</b>") || !strings.Contains(got, "localhost") {
		t.Errorf("the key's row (name as text, RP ID): %q", got)
	}
	unnamed := testpeer.Eval[[]string](t, ctx, `Array.from(document.querySelectorAll("#page button, #page input")).filter(e => {
		if (e.getAttribute("aria-label")) return false;
		if (e.id && document.querySelector('label[for="' + e.id + '"]')) return false;
		return !(e.tagName === "BUTTON" && e.textContent.trim());
	}).map(e => e.outerHTML.slice(0, 80))`)
	if len(unnamed) > 0 {
		t.Errorf("controls without an accessible name: %q", unnamed)
	}
	testpeer.Screenshot(t, ctx, shots, "security-en")
	testpeer.ConsoleSetLanguage(t, ctx, "zh-CN")
	testpeer.Step(t, ctx, "security page in Chinese", 10*time.Second, chromedp.Poll[chromedp.Void](`document.getElementById("page").textContent.includes("安全密钥和通行密钥") && document.getElementById("key-add") !== null`))
	if got := testpeer.Eval[string](t, ctx, `document.getElementById("key-add").textContent + "|" + document.querySelector('.nav a[data-page="security"]').textContent`); got != "添加安全密钥|安全" {
		t.Errorf("zh-CN labels: %q", got)
	}
	testpeer.Screenshot(t, ctx, shots, "security-zh-CN")
	testpeer.ConsoleSetLanguage(t, ctx, "en")

	// Log out; log in with password and key, no code.
	testpeer.Step(t, ctx, "logging out", 10*time.Second, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	testpeer.Screenshot(t, ctx, shots, "login-key-en")
	keyLoginUI(t, ctx, "kim")
	testpeer.Step(t, ctx, "logged in with the key", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#logout")))
	after, _ := h.users.Get("kim")
	if after.LastStep != totpStep || after.Keys[0].LastUsed.IsZero() || after.Keys[0].SignCount == 0 {
		t.Errorf("after the key login: TOTP step %d (was %d), key %+v", after.LastStep, totpStep, after.Keys[0])
	}
	testpeer.Step(t, ctx, "logging out", 10*time.Second, chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))

	// A different authenticator holding a credential with the key's ID and
	// user handle but another private key is refused.
	creds, err = chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: authA})
	if err != nil || len(creds.Credentials) != 1 {
		t.Fatalf("reading the key back: %+v %v", creds, err)
	}
	got := creds.Credentials[0]
	// Only what a credential is made of (the read-back also carries
	// fields addCredential refuses).
	real := &webauthn.Credential{CredentialID: got.CredentialID, IsResidentCredential: true, RpID: got.RpID, PrivateKey: got.PrivateKey,
		UserHandle: got.UserHandle, SignCount: got.SignCount, UserName: got.UserName}
	removeAuthenticator(t, ctx, authA)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	forged := *real
	forged.PrivateKey, forged.SignCount = pkcs8, real.SignCount+10
	authB := addAuthenticator(t, ctx, &forged)
	keyLoginUI(t, ctx, "kim")
	testpeer.Step(t, ctx, "a different authenticator refused", 10*time.Second,
		chromedp.Poll[chromedp.Void](`document.getElementById("login-error").textContent.includes("Wrong user name, password or security key")`))
	if testpeer.Eval[bool](t, ctx, `!document.getElementById("app").hidden`) {
		t.Fatal("logged in with a different authenticator")
	}
	removeAuthenticator(t, ctx, authB)
	if acts := strings.Join(adminActions(t, h, "kim"), "\n"); !strings.Contains(acts, "login_failed security key") {
		t.Errorf("audit lacks the refused authenticator:\n%s", acts)
	}

	// A clone of the key whose signature counter went backwards is refused,
	// logged and audited.
	clone := *real
	clone.SignCount = 0
	authC := addAuthenticator(t, ctx, &clone)
	testpeer.Eval[bool](t, ctx, `document.getElementById("login-error").textContent = ""; true`)
	keyLoginUI(t, ctx, "kim")
	testpeer.Step(t, ctx, "a cloned key refused", 10*time.Second,
		chromedp.Poll[chromedp.Void](`document.getElementById("login-error").textContent.includes("Wrong user name, password or security key")`))
	removeAuthenticator(t, ctx, authC)
	acts := strings.Join(adminActions(t, h, "kim"), "\n")
	if !strings.Contains(acts, "login_refused security key") || !strings.Contains(acts, "cloned key?") {
		t.Errorf("audit lacks the refused clone:\n%s", acts)
	}

	// The real key (its counter intact) still works; remove it, confirmed
	// with the key itself. The session that logged in with it ends.
	authD := addAuthenticator(t, ctx, real)
	testpeer.Eval[bool](t, ctx, `document.getElementById("login-error").textContent = ""; true`)
	keyLoginUI(t, ctx, "kim")
	testpeer.Step(t, ctx, "logged in with the real key again", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#logout")))
	testpeer.Step(t, ctx, "security page", 10*time.Second, chromedp.Navigate(base+"/ui/#security"),
		chromedp.WaitVisible(chromedp.CSS(`button.key-remove[data-name="laptop <b>key</b>"]`)))
	// Without a fresh factor the removal is refused.
	if st := testpeer.Eval[int](t, ctx, fmt.Sprintf(`fetch("keys/%s",{method:"DELETE",headers:{"Content-Type":"application/json","X-CSRF-Token":%q},body:"{}"}).then(r=>r.status)`,
		testpeer.Eval[string](t, ctx, `document.querySelector("button.key-remove").dataset.id`), testpeer.Eval[string](t, ctx, `fetch("session").then(r=>r.json()).then(s=>s.csrf)`))); st != 403 {
		t.Errorf("removal without a second factor: %d, want 403", st)
	}
	testpeer.Step(t, ctx, "removing the key", 15*time.Second,
		chromedp.Click(chromedp.CSS("button.key-remove")),
		chromedp.WaitVisible(chromedp.CSS("#key-confirm-key")))
	testpeer.Screenshot(t, ctx, shots, "security-remove-en")
	testpeer.Step(t, ctx, "confirming with the key", 15*time.Second,
		chromedp.Click(chromedp.CSS("#key-confirm-key")),
		chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if gone, _ := h.users.Get("kim"); len(gone.Keys) != 0 {
		t.Errorf("%d keys left after removal", len(gone.Keys))
	}
	removeAuthenticator(t, ctx, authD)
	acts = strings.Join(adminActions(t, h, "kim"), "\n")
	for _, want := range []string{`key_add security key "laptop <b>key</b>"`, `key_remove security key "laptop <b>key</b>"`, "key_remove_refused wrong second factor", `login operator, security key "laptop <b>key</b>"`} {
		if !strings.Contains(acts, want) {
			t.Errorf("audit lacks %q:\n%s", want, acts)
		}
	}
}
