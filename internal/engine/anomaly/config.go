package anomaly

import (
	"errors"
	"fmt"
	"time"
)

// Modes of the anomaly detector.
const (
	// ModeShadow scores and records every call attempt but never acts:
	// the default until an operator has seen a week of scores.
	ModeShadow = "shadow"
	// ModeEnforce warns at Warn and rejects the call at Block.
	ModeEnforce = "enforce"
)

// Defaults, tuned on generated data (see BENCHMARKS.md).
const (
	DefaultWarn        = 0.725
	DefaultBlock       = 0.75
	DefaultWindow      = 28 * 24 * time.Hour
	DefaultRetrain     = 24 * time.Hour
	DefaultTrees       = 100
	DefaultSample      = 256
	DefaultMaxAccounts = 100000
)

// Config is the `anomaly:` section of the configuration file. The daemon's
// configuration embeds it; Validate is its whole validation.
//
//	anomaly:
//	  mode: shadow            # shadow | enforce
//	  warn: 0.725             # score at which a call is flagged
//	  block: 0.75             # score at which enforce rejects the call
//	  window: 28d             # how much history the baseline learns from
//	  retrain: 24h            # how often the forest is rebuilt
//	  trees: 100
//	  sample: 256
//	  seed: 1
//	  max_accounts: 100000    # accounts with a baseline; the least recently seen go first
//	  country: ""             # the PBX's own country (ISO), for "international"
//	  timezone: UTC           # hour-of-week profiles are kept in this zone
type Config struct {
	Mode        string        `yaml:"mode" json:"mode"`
	Warn        float64       `yaml:"warn" json:"warn"`
	Block       float64       `yaml:"block" json:"block"`
	Window      time.Duration `yaml:"window" json:"window"`
	Retrain     time.Duration `yaml:"retrain" json:"retrain"`
	Trees       int           `yaml:"trees" json:"trees"`
	Sample      int           `yaml:"sample" json:"sample"`
	Seed        uint64        `yaml:"seed" json:"seed"`
	MaxAccounts int           `yaml:"max_accounts" json:"max_accounts"`
	Country     string        `yaml:"country" json:"country"`
	Timezone    string        `yaml:"timezone" json:"timezone"`
}

// Default returns the documented defaults.
func Default() Config {
	return Config{Mode: ModeShadow, Warn: DefaultWarn, Block: DefaultBlock, Window: DefaultWindow,
		Retrain: DefaultRetrain, Trees: DefaultTrees, Sample: DefaultSample, Seed: 1,
		MaxAccounts: DefaultMaxAccounts, Timezone: "UTC"}
}

// Limits of the configuration.
const (
	maxTrees  = 1000
	maxSample = 1 << 16
	maxDims   = 64
)

// Validate reports every problem of c, joined, naming the keys. A zero
// Window, Retrain, Trees, Sample or MaxAccounts means the default (see
// WithDefaults).
func (c Config) Validate() error {
	var errs []error
	switch c.Mode {
	case "", ModeShadow, ModeEnforce:
	default:
		errs = append(errs, fmt.Errorf("anomaly.mode: %q is not shadow or enforce", c.Mode))
	}
	if !(c.Warn > 0 && c.Warn < 1) {
		errs = append(errs, fmt.Errorf("anomaly.warn: %v is not between 0 and 1", c.Warn))
	}
	if !(c.Block > 0 && c.Block <= 1) {
		errs = append(errs, fmt.Errorf("anomaly.block: %v is not between 0 and 1", c.Block))
	} else if c.Block < c.Warn {
		errs = append(errs, fmt.Errorf("anomaly.block: %v is below anomaly.warn %v", c.Block, c.Warn))
	}
	if c.Window < 0 || (c.Window > 0 && c.Window < 24*time.Hour) || c.Window > 366*24*time.Hour {
		errs = append(errs, fmt.Errorf("anomaly.window: %v is not between 1d and 366d", c.Window))
	}
	if c.Retrain < 0 || (c.Retrain > 0 && c.Retrain < time.Minute) {
		errs = append(errs, fmt.Errorf("anomaly.retrain: %v is shorter than a minute", c.Retrain))
	}
	if c.Trees < 0 || c.Trees > maxTrees {
		errs = append(errs, fmt.Errorf("anomaly.trees: %d is not between 1 and %d", c.Trees, maxTrees))
	}
	if c.Sample < 0 || c.Sample == 1 || c.Sample > maxSample {
		errs = append(errs, fmt.Errorf("anomaly.sample: %d is not between 2 and %d", c.Sample, maxSample))
	}
	if c.MaxAccounts < 0 || c.MaxAccounts > 10_000_000 {
		errs = append(errs, fmt.Errorf("anomaly.max_accounts: %d is not between 1 and 10000000", c.MaxAccounts))
	}
	if c.Country != "" && (len(c.Country) != 2 || c.Country[0] < 'A' || c.Country[0] > 'Z' || c.Country[1] < 'A' || c.Country[1] > 'Z') {
		errs = append(errs, fmt.Errorf("anomaly.country: %q is not an upper-case ISO 3166 code like GB", c.Country))
	}
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil {
			errs = append(errs, fmt.Errorf("anomaly.timezone: %w", err))
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	d := Default()
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	if c.Window == 0 {
		c.Window = d.Window
	}
	if c.Retrain == 0 {
		c.Retrain = d.Retrain
	}
	if c.Trees == 0 {
		c.Trees = d.Trees
	}
	if c.Sample == 0 {
		c.Sample = d.Sample
	}
	if c.MaxAccounts == 0 {
		c.MaxAccounts = d.MaxAccounts
	}
	if c.Timezone == "" {
		c.Timezone = d.Timezone
	}
	return c
}
