package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/api/client"
)

// writeTree writes files (path → content) under a temp dir and returns it.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolve(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"etc/tollguard.yaml":   "data_dir: " + "DIR/var\nadmin: {listen: \"127.0.0.9:7000\"}\n",
		"etc/wildcard.yaml":    "data_dir: DIR/var\nadmin: {listen: \"0.0.0.0:7001\"}\n",
		"etc/default.yaml":     "data_dir: DIR/def\nadmin: {listen: \"[::1]:7002\"}\n",
		"etc/bad.yaml":         "admin: {listn: x}\n",
		"var/admin.token":      "tok-from-config\n",
		"def/admin.token":      "tok-from-default",
		"other/admin.token":    "  tok-from-flag \n",
		"cwd/data/admin.token": "tok-from-cwd",
	})
	// data_dir must be absolute in the fixtures: the test changes directory.
	for _, f := range []string{"tollguard.yaml", "wildcard.yaml", "default.yaml"} {
		p := filepath.Join(dir, "etc", f)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "DIR", dir)), 0o600)
	}
	t.Chdir(filepath.Join(dir, "cwd"))
	cfg := filepath.Join(dir, "etc/tollguard.yaml")
	noDefault := filepath.Join(dir, "etc/absent.yaml")
	cases := []struct {
		name      string
		o         client.Options
		wantURL   string
		wantToken string // token file, relative to dir ("" when wantErr)
		wantErr   string
	}{
		{"-c file", client.Options{Config: cfg, DefaultConfig: noDefault}, "http://127.0.0.9:7000", "var/admin.token", ""},
		{"-c wildcard listen", client.Options{Config: filepath.Join(dir, "etc/wildcard.yaml"), DefaultConfig: noDefault}, "http://127.0.0.1:7001", "var/admin.token", ""},
		{"--admin overrides -c", client.Options{Config: cfg, Admin: "http://127.0.0.3:9", DefaultConfig: noDefault}, "http://127.0.0.3:9", "var/admin.token", ""},
		{"--token-file overrides -c", client.Options{Config: cfg, TokenFile: filepath.Join(dir, "other/admin.token"), DefaultConfig: noDefault}, "http://127.0.0.9:7000", "other/admin.token", ""},
		{"default config when it exists", client.Options{DefaultConfig: filepath.Join(dir, "etc/default.yaml")}, "http://[::1]:7002", "def/admin.token", ""},
		{"-c wins over default config", client.Options{Config: cfg, DefaultConfig: filepath.Join(dir, "etc/default.yaml")}, "http://127.0.0.9:7000", "var/admin.token", ""},
		{"built-in defaults", client.Options{DefaultConfig: noDefault}, "http://127.0.0.1:9061", "cwd/data/admin.token", ""},
		{"both overrides skip the default config", client.Options{Admin: "127.0.0.4:1", TokenFile: filepath.Join(dir, "other/admin.token"), DefaultConfig: filepath.Join(dir, "etc/bad.yaml")}, "http://127.0.0.4:1", "other/admin.token", ""},
		{"bad explicit config", client.Options{Config: filepath.Join(dir, "etc/bad.yaml")}, "", "", `bad.yaml:1: unknown key "listn"`},
		{"missing explicit config", client.Options{Config: filepath.Join(dir, "etc/nope.yaml")}, "", "", "no such file"},
		{"missing token", client.Options{Admin: "127.0.0.1:1", TokenFile: filepath.Join(dir, "nope"), DefaultConfig: noDefault}, "", "", "creates it at first start"},
		{"bad admin", client.Options{Admin: "ftp://x:1", DefaultConfig: noDefault}, "", "", "is not host:port or an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, err := client.Resolve(c.o)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cl.BaseURL != c.wantURL {
				t.Errorf("URL = %s, want %s", cl.BaseURL, c.wantURL)
			}
			gotTok, _ := filepath.Abs(cl.TokenFile)
			if gotTok != filepath.Join(dir, c.wantToken) {
				t.Errorf("token file = %s, want %s", gotTok, c.wantToken)
			}
		})
	}
}

func TestAdminURL(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"127.0.0.1:9061", "http://127.0.0.1:9061", ""},
		{":9061", "http://127.0.0.1:9061", ""},
		{"[::]:9061", "http://[::1]:9061", ""},
		{"https://guard.example:8443/", "https://guard.example:8443", ""},
		{"http://127.0.0.1:9061/?x=1", "http://127.0.0.1:9061", ""},
		{"127.0.0.1", "", "has no port"},
		{"unix:///run/x", "", "is not host:port"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := client.AdminURL(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Errorf("AdminURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestDoErrors(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			api.WriteError(w, http.StatusUnauthorized, "missing or wrong admin token")
			return
		}
		switch r.URL.Path {
		case "/api/v1/bans/192.0.2.1":
			api.WriteError(w, http.StatusNotFound, "no ban in force on 192.0.2.1")
		case "/plain":
			w.WriteHeader(http.StatusBadGateway)
		default:
			api.WriteJSON(w, http.StatusOK, api.UnbanReply{})
		}
	}))
	defer ts.Close()
	ctx := context.Background()

	_, err := client.New(ts.URL, "bad").Bans(ctx)
	if !errors.Is(err, client.ErrUnauthorized) || !strings.HasPrefix(err.Error(), "token rejected: missing or wrong admin token") {
		t.Errorf("wrong token: %v", err)
	}
	_, err = client.New(ts.URL, "good").Unban(ctx, "192.0.2.1", "")
	if !client.NotFound(err) || err.Error() != "no ban in force on 192.0.2.1" {
		t.Errorf("404: %v", err)
	}
	err = client.New(ts.URL, "good").Do(ctx, "GET", "/plain", nil, nil, nil)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != 502 || !strings.Contains(ae.Message, "502") {
		t.Errorf("502 without body: %v", err)
	}
	if _, err := client.New(ts.URL, "good").Unban(ctx, "192.0.2.2", "1001"); err != nil {
		t.Errorf("200: %v", err)
	}

	ts.Close()
	_, err = client.New(ts.URL, "good").Bans(ctx)
	want := "cannot reach tollguard at " + ts.URL + ": is `tollguard serve` running?"
	if !errors.Is(err, client.ErrUnreachable) || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("closed server: %v", err)
	}
}
