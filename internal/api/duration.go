package api

import (
	"fmt"
	"time"

	"github.com/tollguard/tollguard/internal/config"
)

// Duration is a time.Duration that encodes in JSON as a string ("1m0s") and
// decodes from "90s", "1h30m" or "7d".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String renders d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := config.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("parsing duration %q: %w", capText(string(b), 40), err)
	}
	*d = Duration(v)
	return nil
}
