package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Validate checks every value and returns the first problem as an *Error
// whose Path names the key (the loader adds file and line).
func (c *Config) Validate() error {
	bad := func(path, msg, hint string) error { return &Error{Path: path, Msg: msg, Hint: hint} }
	if c.DataDir == "" {
		return bad("data_dir", "must not be empty", "a directory tollguard may write, e.g. /var/lib/tollguard")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", fmt.Sprintf("unknown level %q", c.Log.Level), "one of debug, info, warn, error")
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return bad("log.format", fmt.Sprintf("unknown format %q", c.Log.Format), "text or json")
	}
	tlsAt, tlsScheme := -1, ""
	for i, l := range c.SIP.Listen {
		u, err := ParseSIPURL(l, "udp", "tcp", "tls", "ws", "wss")
		if err != nil {
			return bad(fmt.Sprintf("sip.listen[%d]", i), err.Error(), "udp://0.0.0.0:5060, tcp://0.0.0.0:5060, tls://0.0.0.0:5061, ws://0.0.0.0:5066 or wss://0.0.0.0:7443")
		}
		if (u.Scheme == "tls" || u.Scheme == "wss") && tlsAt < 0 {
			tlsAt, tlsScheme = i, u.Scheme
		}
	}
	if c.SIP.Upstream != "" {
		if _, err := ParseSIPURL(c.SIP.Upstream, "udp", "tcp"); err != nil {
			return bad("sip.upstream", err.Error(), "the PBX's private address, e.g. udp://127.0.0.1:5080")
		}
	} else if len(c.SIP.Listen) > 0 {
		return bad("sip.upstream", "must be set when sip.listen is not empty", "the PBX's private address, e.g. udp://127.0.0.1:5080")
	}
	if err := c.validateRoutes(); err != nil {
		return err
	}
	if c.SIP.Advertise != "" && net.ParseIP(c.SIP.Advertise) == nil {
		return bad("sip.advertise", fmt.Sprintf("%q is not an IP address", c.SIP.Advertise), "the public IP clients reach the guard on")
	}
	if tlsAt >= 0 && (c.SIP.TLS.Cert == "" || c.SIP.TLS.Key == "") {
		return bad(fmt.Sprintf("sip.listen[%d]", tlsAt), "a "+tlsScheme+":// listener needs sip.tls.cert and sip.tls.key", "PEM files of the guard's certificate and key")
	}
	if c.SIP.TLS.ClientCA != "" && (c.SIP.TLS.Cert == "" || c.SIP.TLS.Key == "") {
		return bad("sip.tls.client_ca", "mutual TLS needs sip.tls.cert and sip.tls.key too", "set the server certificate and key")
	}
	switch c.SIP.BannedResponse {
	case "drop", "reject":
	default:
		return bad("sip.banned_response", fmt.Sprintf("unknown value %q", c.SIP.BannedResponse), "drop (silent, default) or reject (403)")
	}
	if c.SIP.UpstreamTimeout <= 0 {
		return bad("sip.upstream_timeout", "must be positive", "e.g. 2s")
	}
	if c.SIP.MaxMessageSize < 1024 || c.SIP.MaxMessageSize > 65535 {
		return bad("sip.max_message_size", "must be between 1024 and 65535", "the default 65535 fits any UDP datagram")
	}
	for i, h := range c.SIP.StripHeaders {
		if !isHeaderName(h) {
			return bad(fmt.Sprintf("sip.strip_headers[%d]", i), fmt.Sprintf("%q is not a header name", h), "e.g. P-Asserted-Identity")
		}
		if routingHeader(h) {
			return bad(fmt.Sprintf("sip.strip_headers[%d]", i), fmt.Sprintf("%q is needed to route the request", h), "list identity headers only, e.g. P-Asserted-Identity")
		}
	}
	if c.SIP.MaxConnections < 1 {
		return bad("sip.max_connections", "must be at least 1", "the default 16384")
	}
	if c.SIP.MaxConnectionsPerSource < 1 || c.SIP.MaxConnectionsPerSource > c.SIP.MaxConnections {
		return bad("sip.max_connections_per_source", "must be between 1 and sip.max_connections", "the default 64; raise it for large offices behind one NAT address")
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{
		{"sip.first_message_timeout", c.SIP.FirstMessageTimeout},
		{"sip.unregistered_idle_timeout", c.SIP.UnregisteredIdleTimeout},
		{"sip.registered_idle_timeout", c.SIP.RegisteredIdleTimeout},
		{"sip.dialog_timeout", c.SIP.DialogTimeout},
	} {
		if d.v <= 0 {
			return bad(d.key, "must be positive", "e.g. 5s, 30s, 10m")
		}
	}
	if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
		return bad("admin.listen", fmt.Sprintf("%q is not host:port", c.Admin.Listen), "e.g. 127.0.0.1:9061")
	}
	switch c.Store.Driver {
	case "sqlite":
	case "postgres":
		if c.Store.DSN == "" {
			return bad("store.dsn", "the postgres driver needs a DSN", "postgres://user:pass@host/db")
		}
	default:
		return bad("store.driver", fmt.Sprintf("unknown driver %q", c.Store.Driver), "sqlite or postgres")
	}
	if c.Store.Retention.D() < 24*3600e9 {
		return bad("store.retention", "must be at least 1d", "the default 180d meets the six-month log rule")
	}
	if strings.ContainsRune(c.Store.BackupDir, 0) {
		return bad("store.backup_dir", "must not contain a NUL byte", "a directory path, or empty for <data_dir>/backups")
	}
	if c.Store.Checkpoint <= 0 || c.Store.FlushInterval <= 0 {
		return bad("store", "checkpoint and flush_interval must be positive", "defaults: 1m and 100ms")
	}
	if err := c.validateNodes(); err != nil {
		return err
	}
	if len(c.Jail.RegisterFailure) == 0 {
		return bad("jail.register_failure", "needs at least one entry", "the default is {findtime: 60s, maxretry: 3, banmode: ip_account, bantime: 180s}")
	}
	for i, r := range c.Jail.RegisterFailure {
		p := fmt.Sprintf("jail.register_failure[%d]", i)
		if r.FindTime <= 0 {
			return bad(p+".findtime", "must be positive", "e.g. 60s")
		}
		if r.MaxRetry < 1 {
			return bad(p+".maxretry", "must be at least 1", "e.g. 3")
		}
		if r.BanTime <= 0 {
			return bad(p+".bantime", "must be positive", "e.g. 180s")
		}
		if r.BanMode != "ip" && r.BanMode != "ip_account" {
			return bad(p+".banmode", fmt.Sprintf("unknown banmode %q", r.BanMode), "ip or 0 (the address), ip_account or 1 (that account from that address)")
		}
	}
	if c.Jail.Factor < 1 {
		return bad("jail.factor", "must be at least 1", "2 doubles the ban on each repeat")
	}
	if c.Jail.MaxTime <= 0 {
		return bad("jail.maxtime", "must be positive", "e.g. 24h")
	}
	if c.Enumeration.MaxAccounts < 2 || c.Enumeration.FindTime <= 0 || c.Enumeration.BanTime <= 0 {
		return bad("enumeration", "max_accounts must be at least 2 and findtime, bantime positive", "defaults: 60s, 5, 1h")
	}
	if c.Enumeration.SweepTargets != 0 && c.Enumeration.SweepTargets < 2 {
		return bad("enumeration.sweep_targets", "must be 0 (off) or at least 2", "the default 8 bans svwar before it has seen 10 answers")
	}
	if c.Distributed.MaxSources < 2 || c.Distributed.FindTime <= 0 || c.Distributed.LockTime <= 0 {
		return bad("distributed", "max_sources must be at least 2 and findtime, locktime positive", "defaults: 10m, 5, 30m")
	}
	if c.Distributed.NewSources < 0 {
		return bad("distributed.new_sources", "must not be negative", "0 refuses every new address during a lock; default 5")
	}
	if c.Distributed.Remember < 0 {
		return bad("distributed.remember", "must not be negative", "default 30d")
	}
	if c.Probe.FindTime <= 0 || c.Probe.MaxProbes < 1 || c.Probe.BanTime <= 0 {
		return bad("probe", "findtime, max_probes and bantime must be positive", "defaults: 10m, 3, 1h")
	}
	for i, d := range c.Probe.Destinations {
		if _, err := regexp.Compile(d); err != nil || d == "" {
			return bad(fmt.Sprintf("probe.destinations[%d]", i), fmt.Sprintf("not a regular expression: %q", d), `e.g. "^(\\+|00|011)[1-9]" for international numbers`)
		}
	}
	if err := c.validateCallPolicy(); err != nil {
		return err
	}
	if err := c.Anomaly.Model().Validate(); err != nil {
		// The package names the key first ("anomaly.warn: …"); the first
		// problem is reported, with its line.
		msg := strings.SplitN(err.Error(), "\n", 2)[0]
		path := "anomaly"
		if k, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(k, "anomaly.") {
			path, msg = k, rest
		}
		return bad(path, msg, "see the anomaly section of examples/tollguard.yaml")
	}
	if c.Unproven.MaxTime <= 0 {
		return bad("unproven.maxtime", "must be positive", "default 10m")
	}
	if c.Fingerprints.Threshold < 1 || c.Fingerprints.BanTime <= 0 {
		return bad("fingerprints", "threshold must be at least 1 and bantime positive", "defaults: 100, 24h")
	}
	if c.Flood.Window <= 0 || c.Flood.Limit < 1 || c.Flood.BanTime <= 0 {
		return bad("flood", "window, limit and bantime must be positive", "defaults: 2s, 200, 5m")
	}
	if c.Flood.StrangerLimit < 1 {
		return bad("flood.stranger_limit", "must be at least 1", "default 30: a 20-phone office booting at once sends about 40 before its first registration, and the excess is retransmitted")
	}
	if c.Flood.IPv6Prefix < 32 || c.Flood.IPv6Prefix > 128 {
		return bad("flood.ipv6_prefix", "must be between 32 and 128", "64 groups one customer's network")
	}
	if c.Flood.MaxSources < 1024 {
		return bad("flood.max_sources", "must be at least 1024", "the default tracks about a million sources")
	}
	if g := c.Greylist; g.MinDelay < 0 || g.MaxDelay <= g.MinDelay || g.Remember <= 0 {
		return bad("greylist", "need 0 <= min_delay < max_delay and a positive remember", "defaults: 200ms, 32s (64×T1), 24h")
	}
	if c.Greylist.MaxSources < 1024 {
		return bad("greylist.max_sources", "must be at least 1024", "default 65536 addresses, about 6 MB")
	}
	for i, a := range c.Honeypot.Accounts {
		if strings.TrimSpace(a) == "" {
			return bad(fmt.Sprintf("honeypot.accounts[%d]", i), "must not be empty", "an account no real device uses, e.g. 9999")
		}
	}
	if c.Honeypot.BanTime <= 0 {
		return bad("honeypot.bantime", "must be positive", "e.g. 24h")
	}
	if c.PasswordPolicy.Minimum < 1 {
		return bad("password_policy.minimum", "must be at least 1", "6 is the seed default")
	}
	if c.PasswordPolicy.Strength < 0 || c.PasswordPolicy.Strength > 4 {
		return bad("password_policy.strength", "must be between 0 and 4", "how many of digits, lower case, upper case, special a password needs; 0 = no requirement, 3 = the default")
	}
	if err := c.UI.validate(); err != nil {
		return err
	}
	return c.validateSidecar()
}

// validateSidecar checks the freeswitch, nftables and sources sections.
func (c *Config) validateSidecar() error {
	bad := func(path, msg, hint string) error { return &Error{Path: path, Msg: msg, Hint: hint} }
	if e := c.FreeSWITCH.ESL; e != "" {
		host, port, err := net.SplitHostPort(e)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return bad("freeswitch.esl", fmt.Sprintf("%q is not host:port", e), "FreeSWITCH's Event Socket, e.g. 127.0.0.1:8021")
		}
	}
	if c.FreeSWITCH.Password != "" && c.FreeSWITCH.PasswordFile != "" {
		return bad("freeswitch.password_file", "set either password or password_file, not both", "keep the secret in password_file")
	}
	if strings.ContainsAny(c.FreeSWITCH.Password, "\r\n") {
		return bad("freeswitch.password", "must not contain a line break", "the password from event_socket.conf.xml")
	}
	if j := c.Log.Fail2banJail; j != "" && !validJail(j) {
		return bad("log.fail2ban_jail", fmt.Sprintf("%q is not a jail name", j), "the jail's section name, e.g. tollguard")
	}
	if !validTable(c.NFTables.Table) {
		return bad("nftables.table", fmt.Sprintf("%q is not a table name", c.NFTables.Table), "letters, digits and _, at most 64, e.g. tollguard")
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		switch s.Type {
		case "freeswitch_log", "mod_cti_fail2ban", "asterisk_security":
		default:
			return bad(fmt.Sprintf("sources[%d].type", i), fmt.Sprintf("unknown type %q", s.Type), "freeswitch_log, mod_cti_fail2ban or asterisk_security")
		}
		if s.Path == "" {
			return bad(fmt.Sprintf("sources[%d].path", i), "must not be empty", "the log file, e.g. /var/log/freeswitch/freeswitch.log")
		}
		if seen[s.Path] {
			return bad(fmt.Sprintf("sources[%d].path", i), fmt.Sprintf("%q is listed twice", s.Path), "follow each file once")
		}
		seen[s.Path] = true
	}
	if err := c.Alerts.validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(); err != nil {
		return err
	}
	return c.Intel.validate()
}

// validJail accepts a fail2ban jail name: letters, digits, _ . and -, at
// most 64 (it is passed to fail2ban-client as one argument).
func validJail(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r == '-' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

func validTable(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// isHeaderName reports whether s is a SIP header name (RFC 3261 §25.1
// token).
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// routingHeader reports whether a header the proxy cannot route or answer
// without is named, in full or compact form.
func routingHeader(s string) bool {
	switch strings.ToLower(s) {
	case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq", "max-forwards", "route",
		"record-route", "contact", "m", "content-length", "l", "content-type", "c", "path":
		return true
	}
	return false
}

// ParseSIPURL parses "scheme://host:port" with a scheme from allowed.
func ParseSIPURL(s string, allowed ...string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not scheme://host:port", s)
	}
	ok := false
	for _, a := range allowed {
		ok = ok || u.Scheme == a
	}
	if !ok {
		return nil, fmt.Errorf("scheme %q is not one of %s", u.Scheme, strings.Join(allowed, ", "))
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("%q needs host:port", s)
	}
	if net.ParseIP(host) == nil && host != "localhost" {
		return nil, fmt.Errorf("host %q is not an IP address", host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("port %q is not 0-65535", port)
	}
	return u, nil
}
