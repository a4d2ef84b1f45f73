// Package fail2ban writes tollguard's fail2ban log: one line per
// authentication failure and per ban, in the stable format matched by the
// shipped filter (examples/fail2ban/filter.d/tollguard.conf):
//
//	2025-03-01T12:00:40.000000Z tollguard: auth failure ip[198.51.100.7] account[1001] method[REGISTER] code[403]
//	2025-03-01T12:00:40.000000Z tollguard: ban ip[198.51.100.7] account[1001] scope[ip_account] rule[register_failure[0]] until[2025-03-01T12:03:40Z]
//	2025-03-01T12:00:40.000000Z tollguard: unban ip[198.51.100.7] account[1001] scope[ip_account] rule[admin]
//	2025-03-01T12:00:40.000000Z tollguard: ban net[2001:db8:1:2::/64] account[] scope[prefix] rule[flood] until[...]
//	2025-03-01T12:00:40.000000Z tollguard: lock account[1001] rule[distributed] until[...]
//
// Text from the network (accounts, methods) is sanitised: bytes outside
// printable ASCII, spaces and brackets become '_', and it is capped at 64
// bytes, so an attacker cannot forge a line or a field. Rule names are
// written as everywhere else ("register_failure[0]"): they are tollguard's
// own words, with no spaces, and the filter reads them as rule[\S+].
// "until[never]" marks a ban without expiry.
//
// Open follows logrotate: when the file at its path is renamed away and a
// new one created (rotation without copytruncate), the next line goes to
// the new file, which fail2ban reads.
//
// A Writer is a decision.Applier and an event observer. Apply and Observe
// never block: lines go through a bounded queue to one goroutine that
// writes each line with a single Write call; when the queue is full the
// line is dropped and counted.
package fail2ban

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/event"
)

// QueueSize is how many lines may wait for the writer goroutine.
const QueueSize = 4096

// Options configure a Writer.
type Options struct {
	// Logger receives write errors (once per burst). Default: discard.
	Logger *slog.Logger
	// Registry receives the writer's metrics. Default: none.
	Registry *prometheus.Registry
}

// Writer writes the fail2ban log.
type Writer struct {
	w       io.Writer
	closer  io.Closer
	log     *slog.Logger
	q       chan []byte
	done    chan struct{}
	once    sync.Once
	lines   prometheus.Counter
	dropped prometheus.Counter
}

var _ decision.Applier = (*Writer)(nil)

// Open appends to the file at path (created with mode 0640), reopening it
// when it was rotated away (renamed or removed).
func Open(path string, opts Options) (*Writer, error) {
	f, err := openLog(path)
	if err != nil {
		return nil, err
	}
	rf := &reopening{path: path, f: f}
	w := New(rf, opts)
	w.closer = rf
	return w, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening fail2ban log: %w", err)
	}
	return f, nil
}

// reopening writes to the file at path: before each write it checks that
// path still names the open file and opens it anew if not. Only the
// writer goroutine uses it.
type reopening struct {
	path string
	f    *os.File
}

func (r *reopening) Write(p []byte) (int, error) {
	if cur, err := os.Stat(r.path); err != nil || !sameFile(r.f, cur) {
		f, err := openLog(r.path)
		if err != nil {
			return 0, err
		}
		r.f.Close()
		r.f = f
	}
	return r.f.Write(p)
}

func (r *reopening) Close() error { return r.f.Close() }

// sameFile says whether f is the file cur describes.
func sameFile(f *os.File, cur os.FileInfo) bool {
	fi, err := f.Stat()
	return err == nil && os.SameFile(fi, cur)
}

// New returns a Writer writing to w and starts its goroutine; Close stops it.
func New(w io.Writer, opts Options) *Writer {
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	fw := &Writer{
		w:    w,
		log:  l.With("component", "fail2ban"),
		q:    make(chan []byte, QueueSize),
		done: make(chan struct{}),
		lines: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_fail2ban_lines_total",
			Help: "Lines written to the fail2ban log."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_fail2ban_dropped_lines_total",
			Help: "Lines dropped because the fail2ban log writer fell behind."}),
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(fw.lines, fw.dropped)
	}
	go fw.run()
	return fw
}

func (w *Writer) run() {
	defer close(w.done)
	failing := false
	for line := range w.q {
		if _, err := w.w.Write(line); err != nil {
			if !failing {
				w.log.Error("writing fail2ban log", "err", err)
			}
			failing = true
			continue
		}
		failing = false
		w.lines.Inc()
	}
}

// Close writes the queued lines, stops the goroutine and closes the file
// opened by Open. Apply and Observe must not be called after Close.
func (w *Writer) Close(ctx context.Context) error {
	w.once.Do(func() { close(w.q) })
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("closing fail2ban log: %w", ctx.Err())
	}
	if w.closer != nil {
		if err := w.closer.Close(); err != nil {
			return fmt.Errorf("closing fail2ban log: %w", err)
		}
	}
	return nil
}

func (w *Writer) enqueue(line []byte) {
	select {
	case w.q <- line:
	default:
		w.dropped.Inc()
	}
}

// Apply implements decision.Applier: one line per ban or unban.
func (w *Writer) Apply(d decision.Decision) {
	w.enqueue(FormatDecision(d))
}

// Observe writes a line for each *event.AuthFailure (stale ones excepted)
// and ignores other events.
func (w *Writer) Observe(ev event.Event) {
	if f, ok := ev.(*event.AuthFailure); ok && !f.Stale {
		w.enqueue(FormatFailure(f))
	}
}

// FormatFailure renders the line of one authentication failure.
func FormatFailure(f *event.AuthFailure) []byte {
	account := f.Account
	if account == "" {
		account = f.SIP.Account()
	}
	b := stamp(f.Time)
	b = append(b, "tollguard: auth failure ip["...)
	b = f.Source.Addr().Unmap().AppendTo(b)
	b = append(b, "] account["...)
	b = Sanitize(b, account)
	b = append(b, "] method["...)
	b = Sanitize(b, f.Method)
	b = append(b, "] code["...)
	b = strconv.AppendInt(b, int64(f.Code), 10)
	return append(b, "]\n"...)
}

// FormatDecision renders the line of one ban or unban.
func FormatDecision(d decision.Decision) []byte {
	b := stamp(d.At)
	b = append(b, "tollguard: "...)
	if d.Scope == decision.ScopeAccount {
		if d.Type == decision.TypeBan {
			b = append(b, "lock account["...)
		} else {
			b = append(b, "unlock account["...)
		}
		b = Sanitize(b, d.Account)
	} else {
		b = append(b, string(d.Type)...)
		if d.Scope == decision.ScopePrefix && d.Prefix.Bits() < d.Prefix.Addr().BitLen() {
			b = append(b, " net["...)
			b = d.Prefix.AppendTo(b)
		} else {
			b = append(b, " ip["...)
			b = d.Prefix.Addr().AppendTo(b)
		}
		b = append(b, "] account["...)
		b = Sanitize(b, d.Account)
		b = append(b, "] scope["...)
		b = Sanitize(b, string(d.Scope))
	}
	b = append(b, "] rule["...)
	b = sanitizeRule(b, d.Rule)
	b = append(b, ']')
	if d.Type == decision.TypeBan {
		b = append(b, " until["...)
		if d.Until.IsZero() {
			b = append(b, "never"...)
		} else {
			b = d.Until.UTC().AppendFormat(b, time.RFC3339)
		}
		b = append(b, ']')
	}
	return append(b, '\n')
}

// stamp starts a line with t in UTC, microseconds, ISO 8601.
func stamp(t time.Time) []byte {
	b := make([]byte, 0, 192)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	return append(b, ' ')
}

// sanitizeRule appends a rule name as it is spelt everywhere
// ("register_failure[0]"), with spaces and control bytes replaced by '_'
// and capped at MaxField bytes, so the filter's rule[\S+] always ends at
// the right bracket.
func sanitizeRule(b []byte, s string) []byte {
	if len(s) > MaxField {
		s = s[:MaxField]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// MaxField caps a sanitised field, in bytes.
const MaxField = 64

// Sanitize appends s to b with every byte outside printable ASCII, every
// space and every bracket replaced by '_', capped at MaxField bytes.
func Sanitize(b []byte, s string) []byte {
	if len(s) > MaxField {
		s = s[:MaxField]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '[' || c == ']' {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}
