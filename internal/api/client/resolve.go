package client

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/config"
)

// Built-in defaults used when no config file is found.
const (
	DefaultAdmin     = "http://127.0.0.1:9061"
	DefaultTokenFile = "data/" + api.TokenFile
)

// Options says where a client command finds the daemon.
type Options struct {
	// Config is -c FILE: the daemon's config; admin.listen and data_dir
	// are read from it. An explicit file that cannot be loaded is an error.
	Config string
	// Admin is --admin URL (or host:port); it overrides the config.
	Admin string
	// TokenFile is --token-file F; it overrides the config.
	TokenFile string
	// DefaultConfig is the config read when Config is empty and it exists;
	// empty means config.DefaultPath. Tests point it elsewhere.
	DefaultConfig string
}

// Resolve finds the daemon's admin URL and token and returns a Client.
//
// Order: --admin and --token-file win; the rest comes from -c FILE, or, when
// -c is not given, from the default config path if that file exists, or
// else http://127.0.0.1:9061 and ./data/admin.token. The config's
// admin.listen becomes the URL (a wildcard host becomes loopback) and
// <data_dir>/admin.token the token file.
func Resolve(o Options) (*Client, error) {
	admin, tokenFile := DefaultAdmin, DefaultTokenFile
	cfgPath := o.Config
	if cfgPath == "" && (o.Admin == "" || o.TokenFile == "") {
		def, err := config.Find("", o.DefaultConfig)
		if err != nil {
			return nil, fmt.Errorf("%w (use -c FILE, or --admin and --token-file)", err)
		}
		cfgPath = def
	}
	if cfgPath != "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w (use -c FILE, or --admin and --token-file)", cfgPath, err)
		}
		admin = cfg.Admin.Listen
		tokenFile = filepath.Join(cfg.DataDir, api.TokenFile)
	}
	if o.Admin != "" {
		admin = o.Admin
	}
	if o.TokenFile != "" {
		tokenFile = o.TokenFile
	}
	base, err := AdminURL(admin)
	if err != nil {
		return nil, err
	}
	tok, err := readToken(tokenFile)
	if err != nil {
		return nil, err
	}
	c := New(base, tok)
	c.TokenFile = tokenFile
	return c, nil
}

// AdminURL turns "host:port", "http://host:port" or "https://..." into a
// base URL; a wildcard or empty host ("0.0.0.0:9061", ":9061", "[::]:9061")
// becomes the loopback address of the same family.
func AdminURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("admin address %q is not host:port or an http(s) URL", s)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		return "", fmt.Errorf("admin address %q has no port", s)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	u.Host = net.JoinHostPort(host, port)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	return u.String(), nil
}

// readToken reads the token file with an error that says what to do.
func readToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("admin token %s does not exist: `tollguard serve` creates it at first start "+
			"(point -c at the daemon's config, or use --token-file)", path)
	case errors.Is(err, fs.ErrPermission):
		return "", fmt.Errorf("cannot read admin token %s: permission denied (run as the daemon's user, or use --token-file)", path)
	case err != nil:
		return "", fmt.Errorf("reading admin token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("admin token %s is empty", path)
	}
	return tok, nil
}
