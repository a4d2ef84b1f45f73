// Package logsource follows log files written by FreeSWITCH, mod_cti and
// Asterisk and turns their security lines into events: the fallback when
// the Event Socket is not available.
//
// A Follower reads one file as it grows, across rotation (the file renamed
// and a new one created) and truncation, and remembers in a state file how
// far it got, so a restart neither re-reads nor skips a line.
package logsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/event"
)

// MaxLine bounds one log line. A longer line is skipped up to its newline
// and counted (too_long).
const MaxLine = 64 << 10

// ErrSymlink is returned when the followed path is a symbolic link: a log
// replaced by a link could point the guard at any file on the system.
var ErrSymlink = errors.New("logsource: path is a symbolic link")

// Config configures a Follower.
type Config struct {
	// Type is freeswitch_log, mod_cti_fail2ban or asterisk_security.
	Type string
	// Path is the log file.
	Path string
	// StateDir holds the state file (one per path). Required.
	StateDir string
	// Poll is how often the file is checked for new lines, rotation and
	// truncation once it has been read to its end. Default 250ms.
	Poll time.Duration
	// FromStart reads a file seen for the first time (no state) from its
	// beginning; by default only lines written after the start are read.
	FromStart bool
	// Location is the zone of timestamps written without one. Default
	// time.Local.
	Location *time.Location
	// Now is the clock for lines without a readable timestamp.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Metrics, shared by every Follower of a daemon (NewMetrics). Optional.
	Metrics *Metrics
}

// Follower follows one log file. Stream follows the event source
// contract: it returns on failure (the file missing, unreadable, replaced
// by a link) and never retries itself.
type Follower struct {
	cfg    Config
	parser Parser
	log    *slog.Logger
	m      *Metrics
	state  string
}

// New returns a Follower for cfg.
func New(cfg Config) (*Follower, error) {
	if cfg.Path == "" || cfg.StateDir == "" {
		return nil, errors.New("logsource: path and state directory are required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	p, err := NewParser(cfg.Type, cfg.Now, cfg.Location)
	if err != nil {
		return nil, err
	}
	return &Follower{cfg: cfg, parser: p, m: cfg.Metrics, state: stateFile(cfg.StateDir, cfg.Path),
		log: cfg.Logger.With("component", "logsource", "type", cfg.Type, "path", cfg.Path)}, nil
}

// follow is the state of one Stream run.
type follow struct {
	f      *os.File
	id     identity
	offset int64  // just past the last complete line read (what is saved)
	pos    int64  // how far the file has been read
	buf    []byte // bytes after offset: a line not yet complete
	skip   bool   // inside an over-long line, dropping to its newline
}

// open opens the path, refusing symbolic links.
func (fl *Follower) open() (*os.File, identity, error) {
	if fi, err := os.Lstat(fl.cfg.Path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return nil, identity{}, fmt.Errorf("%w: %s", ErrSymlink, fl.cfg.Path)
	}
	f, err := os.OpenFile(fl.cfg.Path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, identity{}, fmt.Errorf("logsource: opening %s: %w", fl.cfg.Path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, identity{}, fmt.Errorf("logsource: %s: %w", fl.cfg.Path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, identity{}, fmt.Errorf("logsource: %s is not a regular file", fl.cfg.Path)
	}
	id, _ := identityOf(fi)
	return f, id, nil
}

// Stream follows the file and sends each mapped line's event to out. The
// offset is saved before a batch of events is handed on and, when ctx ends
// in the middle of a batch, rolled back to just after the last event
// delivered: a line is never read twice across restarts (a crash in the
// middle of a batch loses that batch's remaining events instead).
func (fl *Follower) Stream(ctx context.Context, out chan<- event.Event) error {
	st, have, err := loadState(fl.state)
	if err != nil {
		return err
	}
	f, id, err := fl.open()
	if err != nil {
		return err
	}
	fw := &follow{f: f, id: id}
	defer func() { fw.f.Close() }()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("logsource: %s: %w", fl.cfg.Path, err)
	}
	switch {
	case have && st.Path == fl.cfg.Path && st.File == id && st.Offset <= size:
		fw.offset = st.Offset
	case have && st.Path == fl.cfg.Path && st.File == id:
		fw.offset = 0 // truncated while we were away
	case have:
		fw.offset = 0 // a new file since the state was saved: read it all
	case fl.cfg.FromStart:
		fw.offset = 0
	default:
		fw.offset = size
	}
	fw.pos = fw.offset
	if _, err := f.Seek(fw.offset, io.SeekStart); err != nil {
		return fmt.Errorf("logsource: %s: %w", fl.cfg.Path, err)
	}
	if err := saveState(fl.state, state{Path: fl.cfg.Path, File: fw.id, Offset: fw.offset}); err != nil {
		return err
	}
	chunk := make([]byte, 32<<10)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		n, err := fw.f.Read(chunk)
		if n > 0 {
			if err := fl.consume(ctx, fw, chunk[:n], out); err != nil {
				return err
			}
			continue
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("logsource: reading %s: %w", fl.cfg.Path, err)
		}
		// At the end of the file: look for rotation and truncation.
		if err := fl.check(ctx, fw, chunk, out); err != nil {
			return err
		}
		timer.Reset(fl.cfg.Poll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// check reopens the path when it names another file (rotated) and rewinds
// when the file shrank below what was read (truncated).
func (fl *Follower) check(ctx context.Context, fw *follow, chunk []byte, out chan<- event.Event) error {
	fi, err := os.Lstat(fl.cfg.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated, the new file not created yet
	}
	if err != nil {
		return fmt.Errorf("logsource: %s: %w", fl.cfg.Path, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s", ErrSymlink, fl.cfg.Path)
	}
	if id, _ := identityOf(fi); id != fw.id {
		// Lines may have reached the old file after the last read and
		// before the new file appeared: read it to its end once more,
		// then switch.
		for {
			n, err := fw.f.Read(chunk)
			if n > 0 {
				if err := fl.consume(ctx, fw, chunk[:n], out); err != nil {
					return err
				}
			}
			if n == 0 || err != nil {
				break
			}
		}
		f, nid, err := fl.open()
		if err != nil {
			return err
		}
		fw.f.Close()
		fl.log.Info("log file rotated; following the new file")
		fl.m.reopens.WithLabelValues(fl.cfg.Type, "rotated").Inc()
		*fw = follow{f: f, id: nid}
		return saveState(fl.state, state{Path: fl.cfg.Path, File: fw.id})
	}
	cur, err := fw.f.Stat()
	if err != nil {
		return fmt.Errorf("logsource: %s: %w", fl.cfg.Path, err)
	}
	if cur.Size() < fw.pos {
		fl.log.Info("log file truncated; reading from its start")
		fl.m.reopens.WithLabelValues(fl.cfg.Type, "truncated").Inc()
		if _, err := fw.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("logsource: %s: %w", fl.cfg.Path, err)
		}
		fw.offset, fw.pos, fw.buf, fw.skip = 0, 0, nil, false
		return saveState(fl.state, state{Path: fl.cfg.Path, File: fw.id})
	}
	return nil
}

type pending struct {
	ev  event.Event
	end int64 // offset just past the line
}

// consume splits data into lines, parses them, saves the offset past the
// last complete line and hands the events on.
func (fl *Follower) consume(ctx context.Context, fw *follow, data []byte, out chan<- event.Event) error {
	var evs []pending
	pos := fw.pos
	start := fw.offset
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if !fw.skip {
				fw.buf = append(fw.buf, data...)
				if len(fw.buf) > MaxLine {
					fl.m.dropped.WithLabelValues(fl.cfg.Type, dropTooLong).Inc()
					fw.skip, fw.buf = true, nil
				}
			}
			pos += int64(len(data))
			break
		}
		pos += int64(i + 1)
		line := data[:i]
		data = data[i+1:]
		if fw.skip {
			// The end of an over-long line: the offset moves past it
			// only now, so a restart never starts inside it (its tail
			// could be made to look like a line of its own).
			fw.skip = false
			fw.offset = pos
			continue
		}
		if len(fw.buf) > 0 {
			line = append(fw.buf, line...)
			fw.buf = nil
		}
		if len(line) > MaxLine {
			fl.m.dropped.WithLabelValues(fl.cfg.Type, dropTooLong).Inc()
			fw.offset = pos
			continue
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		fl.m.lines.WithLabelValues(fl.cfg.Type).Inc()
		ev, why := fl.parser.Parse(line)
		fw.offset = pos
		if ev == nil {
			if why != dropIgnored && why != dropNone {
				fl.m.dropped.WithLabelValues(fl.cfg.Type, why).Inc()
			}
			continue
		}
		evs = append(evs, pending{ev: ev, end: pos})
	}
	fw.pos = pos
	if fw.offset == start {
		return nil
	}
	if err := saveState(fl.state, state{Path: fl.cfg.Path, File: fw.id, Offset: fw.offset}); err != nil {
		return err
	}
	for i, p := range evs {
		select {
		case out <- p.ev:
			fl.m.events.WithLabelValues(fl.cfg.Type).Inc()
		case <-ctx.Done():
			// Roll back to just past the last delivered line, so the
			// undelivered ones are read again after a restart.
			back := start
			if i > 0 {
				back = evs[i-1].end
			}
			if err := saveState(fl.state, state{Path: fl.cfg.Path, File: fw.id, Offset: back}); err != nil {
				return errors.Join(ctx.Err(), err)
			}
			return ctx.Err()
		}
	}
	return nil
}

// Metrics are the log sources' counters.
type Metrics struct {
	lines   *prometheus.CounterVec
	events  *prometheus.CounterVec
	dropped *prometheus.CounterVec
	reopens *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics; Register adds them to a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_logsource_lines_total",
			Help: "Log lines read, by source type."}, []string{"type"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_logsource_events_total",
			Help: "Events produced from log lines, by source type."}, []string{"type"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_logsource_dropped_total",
			Help: "Security lines that produced no event, by source type and reason."}, []string{"type", "reason"}),
		reopens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_logsource_reopens_total",
			Help: "Log files reopened after rotation or rewound after truncation."}, []string{"type", "reason"}),
	}
}

// Register adds the metrics to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.lines, m.events, m.dropped, m.reopens} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("logsource: registering metrics: %w", err)
		}
	}
	return nil
}
