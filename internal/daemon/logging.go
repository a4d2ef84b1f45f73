package daemon

import (
	"io"
	"log/slog"

	"github.com/tollguard/tollguard/internal/config"
)

// NewLogger builds the daemon's logger from the log section.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
