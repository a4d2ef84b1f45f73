package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Alerts configures alert channels (enforce/alert): where the people on
// duty hear about bans, compromised accounts, blocked calls, spend, lockdown
// and outages.
type Alerts struct {
	// Channels are the destinations, each with a unique name.
	Channels []AlertChannel `yaml:"channels"`
	// Rules choose which alerts go to which channels. No rules: every alert
	// goes to every channel.
	Rules []AlertRule `yaml:"rules"`
	// QueueSize bounds the alerts waiting per channel; when full, new
	// alerts are dropped and counted. Default 1024.
	QueueSize int `yaml:"queue_size"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// Retries is how many times a failed delivery is retried. Default 3.
	Retries int `yaml:"retries"`
	// Backoff is the wait before the first retry, doubled for each next
	// one. Default 2s.
	Backoff Duration `yaml:"backoff"`
	// Dedupe drops an alert identical to one seen within this window (same
	// kind, address, account, number and rule). Default 10m.
	Dedupe Duration `yaml:"dedupe"`
	// GroupInterval: the first alert of a kind is sent at once, the ones
	// after it within this interval are counted into one summary sent when
	// it ends. Default 1m.
	GroupInterval Duration `yaml:"group_interval"`
	// RateLimit is the most messages one channel sends per minute (a
	// DingTalk robot accepts 20). Default 20.
	RateLimit int `yaml:"rate_limit"`
}

// AlertChannel is one destination. Which keys apply depends on Type.
type AlertChannel struct {
	// Name identifies the channel in rules, metrics and `tollguard alert test`.
	Name string `yaml:"name"`
	// Type is webhook, dingtalk, wecom or email.
	Type string `yaml:"type"`
	// Language of the message text: en (default) or zh-CN.
	Language string `yaml:"language"`
	// Format is markdown (default) or text (dingtalk, wecom).
	Format string `yaml:"format"`
	// URL is the receiver (webhook, required) or the robot API's base URL
	// (dingtalk, wecom; empty means the vendor's official endpoint).
	URL string `yaml:"url"`
	// Secret signs requests: the HMAC-SHA256 key of the webhook signature
	// header, or the DingTalk robot's sign secret (SEC...).
	Secret string `yaml:"secret"`
	// AccessToken is the DingTalk robot's access_token.
	AccessToken string `yaml:"access_token"`
	// Key is the WeCom group robot's webhook key.
	Key string `yaml:"key"`
	// Keywords are the DingTalk robot's security keywords; a message
	// always carries them.
	Keywords []string `yaml:"keywords"`
	// SMTP configures the email channel.
	SMTP SMTP `yaml:"smtp"`
}

// SMTP configures the email channel.
type SMTP struct {
	// Host:port of the mail server, e.g. smtp.example.com:587.
	Addr string `yaml:"addr"`
	// TLS is starttls (default: refuse a server that does not offer it),
	// tls (implicit TLS, port 465) or none (only without credentials).
	TLS string `yaml:"tls"`
	// CAFile, when set, is the PEM CA the server's certificate must chain
	// to (an internal relay); default the system roots.
	CAFile   string   `yaml:"ca_file"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
}

// AlertRule sends alerts of the given kinds, at or above MinSeverity, to
// Channels.
type AlertRule struct {
	Channels []string `yaml:"channels"`
	// Kinds: ban, compromised, blocked_call, spend, lockdown,
	// upstream_down, store_down, esl_down, cluster_down. Empty means all.
	Kinds []string `yaml:"kinds"`
	// MinSeverity is info, warning or critical. Default info.
	MinSeverity string `yaml:"min_severity"`
}

// AlertKinds lists the alert kinds a rule may name.
var AlertKinds = []string{"ban", "compromised", "blocked_call", "spend", "lockdown", "upstream_down", "store_down", "esl_down", "cluster_down"}

// AlertSeverities lists the severities, lowest first.
var AlertSeverities = []string{"info", "warning", "critical"}

// defaultAlerts returns the alerts section's defaults: no channels.
func defaultAlerts() Alerts {
	return Alerts{
		QueueSize:     1024,
		Timeout:       Duration(10 * time.Second),
		Retries:       3,
		Backoff:       Duration(2 * time.Second),
		Dedupe:        Duration(10 * time.Minute),
		GroupInterval: Duration(time.Minute),
		RateLimit:     20,
	}
}

// normalize makes empty lists and absent ones the same value.
func (a *Alerts) normalize() {
	if len(a.Channels) == 0 {
		a.Channels = nil
	}
	if len(a.Rules) == 0 {
		a.Rules = nil
	}
}

// Channel returns the channel called name, or nil.
func (a *Alerts) Channel(name string) *AlertChannel {
	for i := range a.Channels {
		if a.Channels[i].Name == name {
			return &a.Channels[i]
		}
	}
	return nil
}

// validate checks the alerts section.
func (a *Alerts) validate() error {
	bad := func(path, msg, hint string) error { return &Error{Path: path, Msg: msg, Hint: hint} }
	if a.QueueSize < 1 || a.QueueSize > 1<<20 {
		return bad("alerts.queue_size", "must be between 1 and 1048576", "the default 1024 absorbs any burst")
	}
	if a.Timeout <= 0 || a.Backoff <= 0 || a.Dedupe <= 0 || a.GroupInterval <= 0 {
		return bad("alerts", "timeout, backoff, dedupe and group_interval must be positive", "defaults: 10s, 2s, 10m, 1m")
	}
	if a.Retries < 0 || a.Retries > 10 {
		return bad("alerts.retries", "must be between 0 and 10", "the default is 3")
	}
	if a.RateLimit < 1 {
		return bad("alerts.rate_limit", "must be at least 1", "messages per channel per minute; a DingTalk robot accepts 20")
	}
	seen := map[string]bool{}
	for i := range a.Channels {
		c := &a.Channels[i]
		p := fmt.Sprintf("alerts.channels[%d]", i)
		if c.Name == "" || strings.ContainsAny(c.Name, " \t\r\n\"") {
			return bad(p+".name", fmt.Sprintf("%q is not a valid name", c.Name), "one word, e.g. ops")
		}
		if seen[c.Name] {
			return bad(p+".name", fmt.Sprintf("duplicate channel %q", c.Name), "channel names must be unique")
		}
		seen[c.Name] = true
		if err := c.validate(p); err != nil {
			return err
		}
	}
	for i, r := range a.Rules {
		p := fmt.Sprintf("alerts.rules[%d]", i)
		if len(r.Channels) == 0 {
			return bad(p+".channels", "must name at least one channel", "a name from alerts.channels")
		}
		for j, n := range r.Channels {
			if !seen[n] {
				return bad(fmt.Sprintf("%s.channels[%d]", p, j), fmt.Sprintf("no channel named %q", n), "a name from alerts.channels")
			}
		}
		for j, k := range r.Kinds {
			if !slices.Contains(AlertKinds, k) {
				return bad(fmt.Sprintf("%s.kinds[%d]", p, j), fmt.Sprintf("unknown kind %q", k), strings.Join(AlertKinds, ", "))
			}
		}
		if r.MinSeverity != "" && !slices.Contains(AlertSeverities, r.MinSeverity) {
			return bad(p+".min_severity", fmt.Sprintf("unknown severity %q", r.MinSeverity), "info, warning or critical")
		}
	}
	return nil
}

// validate checks one channel; p is its path.
func (c *AlertChannel) validate(p string) error {
	bad := func(key, msg, hint string) error { return &Error{Path: p + "." + key, Msg: msg, Hint: hint} }
	switch c.Language {
	case "", "en", "zh-CN":
	default:
		return bad("language", fmt.Sprintf("unknown language %q", c.Language), "en or zh-CN")
	}
	switch c.Format {
	case "", "markdown", "text":
	default:
		return bad("format", fmt.Sprintf("unknown format %q", c.Format), "markdown or text")
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("url", "is not an http:// or https:// URL", "e.g. https://hooks.example.com/tollguard")
		}
	}
	notFor := func(key string, set bool) error {
		if set {
			return bad(key, fmt.Sprintf("does not apply to a %s channel", c.Type), "remove it")
		}
		return nil
	}
	isSMTP := c.SMTP.Addr != "" || c.SMTP.From != "" || len(c.SMTP.To) > 0 || c.SMTP.Username != "" || c.SMTP.Password != "" || c.SMTP.TLS != "" || c.SMTP.CAFile != ""
	var err error
	switch c.Type {
	case "webhook":
		if c.URL == "" {
			return bad("url", "a webhook channel needs a url", "the receiver, e.g. https://hooks.example.com/tollguard")
		}
		err = firstErr(notFor("access_token", c.AccessToken != ""), notFor("key", c.Key != ""),
			notFor("keywords", len(c.Keywords) > 0), notFor("smtp", isSMTP), notFor("format", c.Format != ""))
	case "dingtalk":
		if c.AccessToken == "" {
			return bad("access_token", "a dingtalk channel needs the robot's access_token", "the access_token in the robot's webhook URL")
		}
		err = firstErr(notFor("key", c.Key != ""), notFor("smtp", isSMTP))
	case "wecom":
		if c.Key == "" {
			return bad("key", "a wecom channel needs the robot's key", "the key in the robot's webhook URL")
		}
		err = firstErr(notFor("access_token", c.AccessToken != ""), notFor("secret", c.Secret != ""),
			notFor("keywords", len(c.Keywords) > 0), notFor("smtp", isSMTP))
	case "email":
		err = firstErr(notFor("url", c.URL != ""), notFor("access_token", c.AccessToken != ""), notFor("key", c.Key != ""),
			notFor("secret", c.Secret != ""), notFor("keywords", len(c.Keywords) > 0), notFor("format", c.Format != ""))
		if err == nil {
			err = c.SMTP.validate(p + ".smtp")
		}
	default:
		return bad("type", fmt.Sprintf("unknown type %q", c.Type), "webhook, dingtalk, wecom or email")
	}
	return err
}

// validate checks the email settings; p is their path.
func (s *SMTP) validate(p string) error {
	bad := func(key, msg, hint string) error { return &Error{Path: p + "." + key, Msg: msg, Hint: hint} }
	if _, port, err := net.SplitHostPort(s.Addr); err != nil || port == "" {
		return bad("addr", fmt.Sprintf("%q is not host:port", s.Addr), "e.g. smtp.example.com:587")
	}
	switch s.TLS {
	case "", "starttls", "tls":
	case "none":
		if s.Username != "" || s.Password != "" {
			return bad("tls", "credentials are never sent without TLS", "use starttls or tls, or drop username and password")
		}
	default:
		return bad("tls", fmt.Sprintf("unknown value %q", s.TLS), "starttls (default), tls or none")
	}
	if (s.Username == "") != (s.Password == "") {
		return bad("username", "username and password go together", "set both, or neither for a relay without auth")
	}
	if !validMailbox(s.From) {
		return bad("from", fmt.Sprintf("%q is not an address", s.From), "e.g. tollguard@example.com")
	}
	if len(s.To) == 0 {
		return bad("to", "needs at least one recipient", "e.g. [oncall@example.com]")
	}
	for i, t := range s.To {
		if !validMailbox(t) {
			return bad(fmt.Sprintf("to[%d]", i), fmt.Sprintf("%q is not an address", t), "e.g. oncall@example.com")
		}
	}
	return nil
}

// validMailbox accepts a bare address local@domain without characters that
// could break an SMTP command or a header.
func validMailbox(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n<>,;\"()")
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
