package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tollguard/tollguard/internal/engine/anomaly"
)

// DefaultPath is where client commands look for the config when -c is not
// given.
const DefaultPath = "/etc/tollguard/tollguard.yaml"

// Find says which config file a command uses: path when given; else def
// (DefaultPath when empty) if that file exists; else "" for the built-in
// defaults. A default file that exists but cannot be checked is an error.
// Every command resolves its config through Find (or Resolve).
func Find(path, def string) (string, error) {
	if path != "" {
		return path, nil
	}
	if def == "" {
		def = DefaultPath
	}
	if _, err := os.Stat(def); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("checking default config %s: %w", def, err)
	}
	return def, nil
}

// Resolve loads the file Find names, or returns the built-in defaults when
// it names none. It returns the file it used ("" for the defaults).
func Resolve(path, def string) (*Config, string, error) {
	used, err := Find(path, def)
	if err != nil {
		return nil, "", err
	}
	if used == "" {
		return Default(), "", nil
	}
	c, err := Load(used)
	if err != nil {
		return nil, used, fmt.Errorf("loading %s: %w", used, err)
	}
	return c, used, nil
}

// Default returns the configuration used when a key is absent.
func Default() *Config {
	return &Config{
		DataDir: "./data",
		Log:     Log{Level: "info", Format: "text"},
		SIP: SIP{
			Listen:          []string{"udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"},
			Upstream:        "udp://127.0.0.1:5080",
			BannedResponse:  "drop",
			UpstreamTimeout: Duration(2 * time.Second),
			MaxMessageSize:  65535,
			StripHeaders: []string{"P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID",
				"X-Forwarded-For", "X-Real-IP", "X-AUTH-IP", "X-AUTH-PORT"},
			MaxConnections:          16384,
			MaxConnectionsPerSource: 64,
			FirstMessageTimeout:     Duration(5 * time.Second),
			UnregisteredIdleTimeout: Duration(30 * time.Second),
			RegisteredIdleTimeout:   Duration(10 * time.Minute),
			DialogTimeout:           Duration(12 * time.Hour),
		},
		Admin: Admin{Listen: "127.0.0.1:9061"},
		Store: Store{
			Driver:        "sqlite",
			Retention:     Duration(180 * 24 * time.Hour),
			Checkpoint:    Duration(time.Minute),
			FlushInterval: Duration(100 * time.Millisecond),
			NodeKeys:      []NodeKey{},
		},
		Jail: Jail{
			RegisterFailure: []JailRule{
				{FindTime: Duration(60 * time.Second), MaxRetry: 3, BanMode: "ip_account", BanTime: Duration(180 * time.Second)},
				{FindTime: Duration(time.Hour), MaxRetry: 5, BanMode: "ip_account", BanTime: Duration(time.Hour)},
				{FindTime: Duration(time.Hour), MaxRetry: 10, BanMode: "ip", BanTime: Duration(time.Hour)},
			},
			Factor:  2,
			MaxTime: Duration(24 * time.Hour),
		},
		Enumeration: Enumeration{FindTime: Duration(60 * time.Second), MaxAccounts: 5, BanTime: Duration(time.Hour), SweepTargets: 8},
		Distributed: Distributed{FindTime: Duration(10 * time.Minute), MaxSources: 5, LockTime: Duration(30 * time.Minute),
			NewSources: 5, Remember: Duration(30 * 24 * time.Hour)},
		Fingerprints: Fingerprints{Threshold: 100, BanTime: Duration(24 * time.Hour)},
		Flood:        Flood{Window: Duration(2 * time.Second), Limit: 200, StrangerLimit: 30, IPv6Prefix: 64, BanTime: Duration(5 * time.Minute), MaxSources: 1 << 20},
		Greylist:     Greylist{Enabled: true, MinDelay: Duration(200 * time.Millisecond), MaxDelay: Duration(32 * time.Second), Remember: Duration(24 * time.Hour), MaxSources: 1 << 16},
		Honeypot:     Honeypot{BanTime: Duration(24 * time.Hour)},
		Probe: Probe{FindTime: Duration(10 * time.Minute), MaxProbes: 3, BanTime: Duration(time.Hour),
			Destinations: []string{`^(\+|00|011)[1-9]`, `^(1?900|0900)`}},
		Unproven:       Unproven{MaxTime: Duration(10 * time.Minute)},
		Anomaly:        defaultAnomaly(),
		PasswordPolicy: PasswordPolicy{Minimum: 6, Strength: 3},
		NFTables:       NFTables{Table: "tollguard"},
		Alerts:         defaultAlerts(),
		UI:             defaultUI(),
		CallPolicy:     CallPolicy{DefaultCountry: "CN", ExpectedDuration: Duration(10 * time.Minute), Rules: []CallRule{}},
		Lockdown:       Lockdown{AllowAccounts: []string{}},
		CallTokens:     CallTokens{Accounts: []string{}, Header: "X-Call-Token"},
		Media:          Media{SRTPRequired: SRTPRequired{Accounts: []string{}, Listeners: []string{}}},
		Cluster:        defaultCluster(),
		Intel:          defaultIntel(),
	}
}

// Error is a configuration error with its position.
type Error struct {
	File string
	Line int
	// Path is the key, dotted: "sip.listen[1]".
	Path string
	Msg  string
	// Hint says how to fix it, in one line.
	Hint string
}

// Error renders "file:line: path: msg (hint: ...)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: " + e.Hint + ")")
	}
	return b.String()
}

// Load reads, defaults and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data (named file in errors) over the defaults and validates
// the result. Unknown keys are errors.
func Parse(file string, data []byte) (*Config, error) {
	cfg := Default()
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, yamlError(file, err)
	}
	lines := map[string]int{}
	if len(root.Content) > 0 {
		indexLines(root.Content[0], "", lines)
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(file, err)
		}
	}
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = file
			ce.Line = lineOf(lines, ce.Path)
		}
		return nil, err
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`line (\d+): (.*)`)

// yamlError turns a yaml.v3 error into an *Error with file and line.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{File: file, Msg: msg}
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	if strings.Contains(e.Msg, "not found in type") {
		field := strings.TrimPrefix(strings.Fields(e.Msg)[1], "field ")
		e.Msg = fmt.Sprintf("unknown key %q", field)
		e.Hint = "check the spelling against examples/tollguard.yaml"
	}
	return e
}

// indexLines records the line of every key and list item under n.
func indexLines(n *yaml.Node, path string, out map[string]int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			out[p] = n.Content[i].Line
			indexLines(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[p] = c.Line
			indexLines(c, p, out)
		}
	}
}

// lineOf returns the line of path or of its nearest ancestor present.
func lineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// UnmarshalYAML accepts Go durations ("90s", "1h30m") and days ("180d").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	s := strings.TrimSpace(n.Value)
	v, err := ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use 90s, 5m, 24h or 180d)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML renders d like time.Duration does.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText renders d like time.Duration does (JSON output).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// ParseDuration parses a Go duration or a whole number of days ("7d").
func ParseDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad day count %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// UnmarshalYAML accepts "203.0.113.0/24", "2001:db8::/32" or a single address.
func (p *Prefix) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParsePrefix(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not an address or CIDR (use 203.0.113.0/24 or 2001:db8::1)", n.Line, n.Value)
	}
	*p = Prefix(v)
	return nil
}

// MarshalText renders p as a CIDR.
func (p Prefix) MarshalText() ([]byte, error) { return []byte(netip.Prefix(p).String()), nil }

// ParsePrefix parses a CIDR or a single address (as a host prefix), masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// normalize makes an empty list and an absent one the same value.
func (c *Config) normalize() {
	if len(c.Allow) == 0 {
		c.Allow = nil
	}
	if len(c.Deny) == 0 {
		c.Deny = nil
	}
	if len(c.Sources) == 0 {
		c.Sources = nil
	}
	if len(c.SIP.AllowSources) == 0 {
		c.SIP.AllowSources = nil
	}
	if len(c.SIP.DenySources) == 0 {
		c.SIP.DenySources = nil
	}
	if len(c.SIP.Routes) == 0 {
		c.SIP.Routes = nil
	}
	if len(c.SIP.WSOrigins) == 0 {
		c.SIP.WSOrigins = nil
	}
	if len(c.Honeypot.Accounts) == 0 {
		c.Honeypot.Accounts = nil
	}
	c.Alerts.normalize()
	if len(c.Intel.Feeds) == 0 {
		c.Intel.Feeds = nil
	}
	if len(c.Intel.Export.BouncerKeys) == 0 {
		c.Intel.Export.BouncerKeys = nil
	}
}

// defaultAnomaly is anomaly.Default in the config's types.
func defaultAnomaly() Anomaly {
	d := anomaly.Default()
	return Anomaly{Mode: d.Mode, Warn: d.Warn, Block: d.Block, Window: Duration(d.Window), Retrain: Duration(d.Retrain),
		Trees: d.Trees, Sample: d.Sample, Seed: d.Seed, MaxAccounts: d.MaxAccounts, Country: d.Country, Timezone: d.Timezone}
}
