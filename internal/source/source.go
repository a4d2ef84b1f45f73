// Package source holds the contract every event source follows and the one
// supervisor that restarts sources.
//
// A source (the FreeSWITCH Event Socket, a followed log file) implements
// Streamer: Stream sends events until it fails and then returns; it never
// retries by itself. Supervise restarts it with a capped exponential
// backoff, so retry policy lives in one place (the shape CrowdSec's
// acquisition modules follow).
package source

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/event"
)

// Streamer is an event source.
type Streamer interface {
	// Stream sends events to out until it fails or ctx ends, then returns
	// a non-nil error (ctx.Err() on cancellation). It blocks while out is
	// full and never retries by itself.
	Stream(ctx context.Context, out chan<- event.Event) error
}

// Supervisor restarts one Streamer.
type Supervisor struct {
	// Name labels logs and metrics: a fixed name from the config such as
	// "esl" or "freeswitch_log", never attacker text.
	Name string
	// Min and Max bound the backoff between runs. Defaults 1s and 1m.
	Min, Max time.Duration
	// Logger receives a line when a run fails differently from the run
	// before (a state change: connection refused, then a wrong password);
	// the same failure again is logged at debug level only, so a source
	// that stays down says so once. Default slog.Default().
	Logger *slog.Logger
	// Restarts counts runs that ended in an error, by source name.
	// Optional; NewRestarts builds it.
	Restarts *prometheus.CounterVec
	// Sleep waits between runs; tests replace it. Default: a timer that
	// ends early when ctx ends.
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewRestarts returns tollguard_source_restarts_total, registered on reg
// when reg is not nil.
func NewRestarts(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_source_restarts_total",
		Help: "Event source runs that ended in an error and were restarted, by source."}, []string{"source"})
	if reg != nil {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Run runs s until ctx ends and returns ctx.Err(). After a failed run it
// waits Min, doubling up to Max for each failure in a row; a run that
// lasted longer than Max resets the wait to Min.
func (sv *Supervisor) Run(ctx context.Context, s Streamer, out chan<- event.Event) error {
	lo, hi := sv.Min, sv.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = max(lo, time.Minute)
	}
	log := sv.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "source", "source", sv.Name)
	sleep := sv.Sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	wait := lo
	var last string // the previous run's failure
	for {
		start := time.Now()
		err := s.Stream(ctx, out)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = errors.New("stream returned without an error")
		}
		if time.Since(start) > hi {
			wait = lo
		}
		if sv.Restarts != nil {
			sv.Restarts.WithLabelValues(sv.Name).Inc()
		}
		if msg := err.Error(); msg != last {
			log.Warn("source failed; restarting", "err", err, "in", wait)
			last = msg
		} else {
			log.Debug("source failed again; restarting", "err", err, "in", wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(wait*2, hi)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
