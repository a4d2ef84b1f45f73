package anomaly

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Default()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if ok.Mode != ModeShadow {
		t.Errorf("default mode %q, want shadow", ok.Mode)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" means valid
	}{
		{"enforce", func(c *Config) { c.Mode = ModeEnforce }, ""},
		{"zero values take defaults", func(c *Config) { c.Window, c.Trees, c.Sample, c.MaxAccounts = 0, 0, 0, 0 }, ""},
		{"mode", func(c *Config) { c.Mode = "block" }, "anomaly.mode"},
		{"warn 0", func(c *Config) { c.Warn = 0 }, "anomaly.warn"},
		{"warn 1", func(c *Config) { c.Warn = 1 }, "anomaly.warn"},
		{"block below warn", func(c *Config) { c.Warn, c.Block = 0.8, 0.7 }, "below anomaly.warn"},
		{"block NaN", func(c *Config) { c.Block = nan() }, "anomaly.block"},
		{"window short", func(c *Config) { c.Window = time.Hour }, "anomaly.window"},
		{"retrain", func(c *Config) { c.Retrain = time.Second }, "anomaly.retrain"},
		{"trees", func(c *Config) { c.Trees = 5000 }, "anomaly.trees"},
		{"sample", func(c *Config) { c.Sample = 1 }, "anomaly.sample"},
		{"accounts", func(c *Config) { c.MaxAccounts = -1 }, "anomaly.max_accounts"},
		{"country", func(c *Config) { c.Country = "gb" }, "anomaly.country"},
		{"timezone", func(c *Config) { c.Timezone = "Mars/Olympus" }, "anomaly.timezone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	c := Default()
	c.Mode, c.Trees = "x", -1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "mode") || !strings.Contains(err.Error(), "trees") {
		t.Errorf("joined errors: %v", err)
	}
	if _, err := NewBaseline(Options{Config: Config{Mode: "x"}}); err == nil {
		t.Error("NewBaseline accepted a bad config")
	}
}

func nan() float64 { z := 0.0; return z / z }
