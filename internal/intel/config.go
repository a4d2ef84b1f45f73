package intel

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/decision/screen"
)

// Formats a feed may have.
const (
	FormatCIDR     = "cidr"     // one address or CIDR per line; '#' and ';' start comments
	FormatAPIBAN   = "apiban"   // APIBAN JSON: {"ipaddress":[…],"ID":"…"}
	FormatCrowdSec = "crowdsec" // a CrowdSec Local API decision stream
)

// Config is the intel section of the configuration file:
//
//	intel:
//	  min_prefix_v4: 16      # a feed may not ban more than a /16 of IPv4 at once
//	  min_prefix_v6: 32      # … or a /32 of IPv6
//	  feeds:
//	    - name: spamhaus-drop
//	      url: https://www.spamhaus.org/drop/drop.txt   # or /path/file, file:///path
//	      format: cidr       # cidr | apiban | crowdsec
//	      refresh: 1h        # default 1h; 10s for crowdsec
//	      ban_for: 2h        # default 2 × refresh (cidr), 168h (apiban); crowdsec sends its own
//	      timeout: 30s
//	      max_bytes: 16777216
//	      max_entries: 500000
//	      api_key: ""        # crowdsec: the bouncer key sent as X-Api-Key
//	      shrink_confirmations: 3
//
// For APIBAN the URL is the v1 "banned" endpoint with the key in its path
// (https://apiban.org/api/KEY/banned); tollguard pages through it with the
// returned ID. For CrowdSec it is the Local API's base URL
// (http://127.0.0.1:8080/). URLs and keys are never logged.
type Config struct {
	MinPrefixV4 int          `yaml:"min_prefix_v4"`
	MinPrefixV6 int          `yaml:"min_prefix_v6"`
	Feeds       []FeedConfig `yaml:"feeds"`
}

// FeedConfig is one feed; see Config for the keys and defaults.
type FeedConfig struct {
	Name                string        `yaml:"name"`
	URL                 string        `yaml:"url"`
	Format              string        `yaml:"format"`
	Refresh             time.Duration `yaml:"refresh"`
	BanFor              time.Duration `yaml:"ban_for"`
	Timeout             time.Duration `yaml:"timeout"`
	MaxBytes            int64         `yaml:"max_bytes"`
	MaxEntries          int           `yaml:"max_entries"`
	APIKey              string        `yaml:"api_key"`
	ShrinkConfirmations int           `yaml:"shrink_confirmations"`
}

// Defaults.
const (
	DefaultRefresh         = time.Hour
	DefaultCrowdSecRefresh = 10 * time.Second
	DefaultAPIBANBanFor    = 7 * 24 * time.Hour
	DefaultTimeout         = 30 * time.Second
	DefaultMaxBytes        = 16 << 20
	DefaultMaxEntries      = 500_000
	DefaultShrinkConfirm   = 3
)

var feedName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,39}$`)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MinPrefixV4 == 0 {
		c.MinPrefixV4 = screen.DefaultMinBits4
	}
	if c.MinPrefixV6 == 0 {
		c.MinPrefixV6 = screen.DefaultMinBits6
	}
	feeds := make([]FeedConfig, len(c.Feeds))
	for i, f := range c.Feeds {
		feeds[i] = f.withDefaults()
	}
	c.Feeds = feeds
	return c
}

func (f FeedConfig) withDefaults() FeedConfig {
	if f.Refresh == 0 {
		f.Refresh = DefaultRefresh
		if f.Format == FormatCrowdSec {
			f.Refresh = DefaultCrowdSecRefresh
		}
	}
	if f.BanFor == 0 {
		f.BanFor = 2 * f.Refresh
		if f.Format == FormatAPIBAN {
			f.BanFor = DefaultAPIBANBanFor
		}
	}
	if f.Timeout == 0 {
		f.Timeout = DefaultTimeout
	}
	if f.MaxBytes == 0 {
		f.MaxBytes = DefaultMaxBytes
	}
	if f.MaxEntries == 0 {
		f.MaxEntries = DefaultMaxEntries
	}
	if f.ShrinkConfirmations == 0 {
		f.ShrinkConfirmations = DefaultShrinkConfirm
	}
	return f
}

// Validate checks the section after defaults are applied.
func (c Config) Validate() error {
	if c.MinPrefixV4 < 8 || c.MinPrefixV4 > 32 {
		return fmt.Errorf("intel.min_prefix_v4 %d: want 8 to 32", c.MinPrefixV4)
	}
	if c.MinPrefixV6 < 16 || c.MinPrefixV6 > 128 {
		return fmt.Errorf("intel.min_prefix_v6 %d: want 16 to 128", c.MinPrefixV6)
	}
	seen := map[string]bool{}
	for i, f := range c.Feeds {
		if err := f.validate(); err != nil {
			return fmt.Errorf("intel.feeds[%d]: %w", i, err)
		}
		if seen[f.Name] {
			return fmt.Errorf("intel.feeds[%d]: name %q used twice", i, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

func (f FeedConfig) validate() error {
	if !feedName.MatchString(f.Name) {
		return fmt.Errorf("name %q: want 1-40 lower-case letters, digits, '.', '_' or '-'", f.Name)
	}
	switch f.Format {
	case FormatCIDR, FormatAPIBAN:
	case FormatCrowdSec:
		if f.APIKey == "" {
			return errors.New("a crowdsec feed needs api_key")
		}
		if !isHTTP(f.URL) {
			return errors.New("a crowdsec feed needs an http(s) url")
		}
	default:
		return fmt.Errorf("format %q: want cidr, apiban or crowdsec", f.Format)
	}
	if f.URL == "" {
		return errors.New("no url")
	}
	if isHTTP(f.URL) {
		u, err := url.Parse(f.URL)
		if err != nil || u.Host == "" {
			return errors.New("url is not a valid http(s) URL")
		}
	} else if p := strings.TrimPrefix(f.URL, "file://"); !strings.HasPrefix(p, "/") {
		return errors.New("url: want http(s)://, file:///path or an absolute path")
	}
	if f.Refresh < time.Second || f.Timeout <= 0 || f.BanFor < f.Refresh {
		return fmt.Errorf("refresh %v, timeout %v, ban_for %v: want refresh ≥ 1s, timeout > 0, ban_for ≥ refresh", f.Refresh, f.Timeout, f.BanFor)
	}
	if f.MaxBytes <= 0 || f.MaxEntries <= 0 || f.ShrinkConfirmations < 1 {
		return errors.New("max_bytes, max_entries and shrink_confirmations must be positive")
	}
	return nil
}

func isHTTP(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")
}
