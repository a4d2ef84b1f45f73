package cluster

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the cluster section of the configuration file:
//
//	cluster:
//	  redis: ""            # empty: this node runs alone
//	  node: ""             # this node's name, unique in the cluster; default: the host name
//	  key_prefix: tollguard
//	  pending_max: 65536   # local decisions kept for Redis while it is down
//	  max_remote_bans: 1000000  # other nodes' bans applied here at most
//
// An empty Redis URL turns the cluster off. The URL forms are:
//
//	redis://[user:pass@]host:port[/db][?options]          one server
//	rediss://…                                            the same over TLS
//	unix:///run/redis.sock                                a local socket
//	redis+sentinel://host:port[/db]?master_name=M&addr=host2:port2   Sentinel
//	redis+cluster://host:port?addr=host2:port2            Redis Cluster (seed nodes)
//
// (rediss+sentinel and rediss+cluster add TLS). The options are go-redis's
// URL options (dial_timeout, read_timeout, pool_size, …); unknown options
// are errors.
type Config struct {
	Redis      string `yaml:"redis"`
	Node       string `yaml:"node"`
	KeyPrefix  string `yaml:"key_prefix"`
	PendingMax int    `yaml:"pending_max"`
	// MaxRemoteBans bounds the other nodes' bans this node holds, so a
	// Redis flooded with valid-looking bans cannot exhaust its memory.
	MaxRemoteBans int `yaml:"max_remote_bans"`
}

// Defaults for Config.
const (
	DefaultKeyPrefix  = "tollguard"
	DefaultPendingMax = 65536
	DefaultMaxRemote  = 1_000_000
)

// Enabled reports whether a Redis URL is configured.
func (c Config) Enabled() bool { return c.Redis != "" }

var nodeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// withDefaults fills the zero fields; the node name defaults to the host
// name's first label.
func (c Config) withDefaults() Config {
	if c.Node == "" {
		if h, err := os.Hostname(); err == nil {
			h, _, _ = strings.Cut(h, ".")
			c.Node = h
		}
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.PendingMax == 0 {
		c.PendingMax = DefaultPendingMax
	}
	if c.MaxRemoteBans == 0 {
		c.MaxRemoteBans = DefaultMaxRemote
	}
	return c
}

// Validate checks the section with its defaults applied; it parses the
// URL but does not connect.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	c = c.withDefaults()
	if !nodeName.MatchString(c.Node) {
		return fmt.Errorf("cluster.node %q: want 1-63 letters, digits, '.', '_' or '-'", c.Node)
	}
	if c.KeyPrefix != "" && !nodeName.MatchString(c.KeyPrefix) {
		return fmt.Errorf("cluster.key_prefix %q: want 1-63 letters, digits, '.', '_' or '-'", c.KeyPrefix)
	}
	if c.PendingMax < 0 || c.MaxRemoteBans < 0 {
		return errors.New("cluster.pending_max, cluster.max_remote_bans: must not be negative")
	}
	if _, err := NewClient(c.Redis); err != nil {
		return fmt.Errorf("cluster.redis: %w", err)
	}
	return nil
}

// NewClient returns a go-redis client for one of the URL forms Config
// documents. Errors never contain the URL's password.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	base, mode, _ := strings.Cut(u.Scheme, "+")
	switch base {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("unsupported scheme %q (want redis, rediss, unix, redis+sentinel or redis+cluster)", u.Scheme)
	}
	plain := *u
	plain.Scheme = base
	switch mode {
	case "":
		o, err := redis.ParseURL(plain.String())
		if err != nil {
			return nil, redact(err, u)
		}
		setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries)
		return redis.NewClient(o), nil
	case "sentinel":
		if base == "unix" {
			return nil, errors.New("sentinel over a unix socket is not supported")
		}
		o, err := redis.ParseFailoverURL(plain.String())
		if err != nil {
			return nil, redact(err, u)
		}
		if o.MasterName == "" {
			return nil, errors.New("a sentinel URL needs ?master_name=")
		}
		setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries)
		return redis.NewFailoverClient(o), nil
	case "cluster":
		if base == "unix" {
			return nil, errors.New("cluster over a unix socket is not supported")
		}
		o, err := redis.ParseClusterURL(plain.String())
		if err != nil {
			return nil, redact(err, u)
		}
		setTimeouts(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries)
		return redis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
}

// setTimeouts shortens go-redis's defaults where the URL left them: a guard
// must notice a dead Redis within a second or two and go on alone, not
// queue behind 3 retries of a 5 s dial.
func setTimeouts(dial, read, write *time.Duration, retries *int) {
	if *dial == 0 {
		*dial = time.Second
	}
	if *read == 0 {
		*read = time.Second
	}
	if *write == 0 {
		*write = time.Second
	}
	if *retries == 0 {
		*retries = 1
	}
}

// redact removes the URL's password from a go-redis parse error.
func redact(err error, u *url.URL) error {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return errors.New(msg)
}
