package freeswitch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Errors reported by Conn.
var (
	// ErrAuth means FreeSWITCH refused the password ("-ERR invalid").
	ErrAuth = errors.New("esl: authentication refused")
	// ErrRejected means FreeSWITCH's ACL refused the connection
	// (text/rude-rejection, mod_event_socket.c listener_run).
	ErrRejected = errors.New("esl: connection rejected by acl")
	// ErrDisconnected means FreeSWITCH sent text/disconnect-notice
	// (mod_event_socket.c listener_run, on shutdown or "exit").
	ErrDisconnected = errors.New("esl: disconnected by freeswitch")
	// ErrClosed means the connection was closed by this side.
	ErrClosed = errors.New("esl: connection closed")
)

// CommandError is a "-ERR ..." reply to a command or api call.
type CommandError struct {
	Command string
	Reply   string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("esl: %s: %s", e.Command, strings.TrimSpace(e.Reply))
}

// eventBuffer is how many events wait between the socket reader and the
// consumer. When it is full the reader stops reading, so TCP pushes back on
// FreeSWITCH rather than events being dropped.
const eventBuffer = 1024

// Conn is one authenticated inbound Event Socket connection. Commands are
// written one at a time and their replies matched in order (mod_event_socket
// answers each command before it reads the next, parse_command); background
// jobs are matched by the Job-UUID the client chooses. Events arrive on
// Events. A Conn never reconnects: when Done is closed, Err says why.
type Conn struct {
	nc net.Conn
	rd *Reader

	wmu     sync.Mutex // serialises writes and the pending queue's order
	mu      sync.Mutex
	pending []chan *Frame
	jobs    map[string]chan *Event

	events  chan *Event
	done    chan struct{}
	once    sync.Once
	err     error
	onDrop  func(reason string)
	timeout time.Duration
}

// DialOptions tunes Dial.
type DialOptions struct {
	// Timeout bounds the connect and the authentication exchange. Default 5s.
	Timeout time.Duration
	// OnDrop is called (from the reader goroutine) for every frame the
	// connection discards, with a short fixed reason. Optional.
	OnDrop func(reason string)
}

// Dial connects to an inbound Event Socket at addr and authenticates: the
// server sends auth/request, the client answers "auth PASSWORD", and the
// server replies "+OK accepted" or "-ERR invalid" and hangs up
// (mod_event_socket.c listener_run and parse_command).
func Dial(ctx context.Context, addr, password string, o DialOptions) (*Conn, error) {
	if strings.ContainsAny(password, "\r\n") {
		return nil, errors.New("esl: password contains a line break")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("esl: connecting to %s: %w", addr, err)
	}
	c := &Conn{
		nc:      nc,
		rd:      NewReader(nc),
		jobs:    make(map[string]chan *Event),
		events:  make(chan *Event, eventBuffer),
		done:    make(chan struct{}),
		onDrop:  o.OnDrop,
		timeout: o.Timeout,
	}
	if c.onDrop == nil {
		c.onDrop = func(string) {}
	}
	if err := c.auth(ctx, password); err != nil {
		nc.Close()
		return nil, fmt.Errorf("esl: %s: %w", addr, err)
	}
	go c.readLoop()
	return c, nil
}

// auth runs the handshake before the reader goroutine starts.
func (c *Conn) auth(ctx context.Context, password string) error {
	deadline := time.Now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	f, err := c.rd.ReadFrame()
	if err != nil {
		return fmt.Errorf("waiting for auth/request: %w", err)
	}
	switch ct := f.ContentType(); ct {
	case "auth/request":
	case "text/rude-rejection":
		return ErrRejected
	default:
		return fmt.Errorf("%w: expected auth/request, got %q", ErrFrame, capText(ct))
	}
	if _, err := fmt.Fprintf(c.nc, "auth %s\n\n", password); err != nil {
		return fmt.Errorf("sending auth: %w", err)
	}
	for {
		f, err = c.rd.ReadFrame()
		if err != nil {
			return fmt.Errorf("waiting for the auth reply: %w", err)
		}
		if f.ContentType() == "command/reply" {
			break
		}
	}
	if r := f.Header("Reply-Text"); !strings.HasPrefix(r, "+OK") {
		return ErrAuth
	}
	if !stop() {
		return ctx.Err() // the deadline has been forced into the past
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}

// Events delivers events in the order FreeSWITCH sent them. It is not
// closed; select on Done as well.
func (c *Conn) Events() <-chan *Event { return c.events }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err reports why the connection ended; nil while it is up.
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close ends the connection. Pending commands fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

func (c *Conn) fail(err error) {
	c.once.Do(func() {
		c.err = err
		c.nc.Close()
		close(c.done)
		c.mu.Lock()
		c.pending = nil
		c.jobs = map[string]chan *Event{}
		c.mu.Unlock()
	})
}

func (c *Conn) readLoop() {
	for {
		f, err := c.rd.ReadFrame()
		if err != nil {
			c.fail(fmt.Errorf("esl: reading: %w", err))
			return
		}
		switch ct := f.ContentType(); ct {
		case "command/reply", "api/response":
			c.mu.Lock()
			var ch chan *Frame
			if len(c.pending) > 0 {
				ch, c.pending = c.pending[0], c.pending[1:]
			}
			c.mu.Unlock()
			if ch == nil {
				c.onDrop("unexpected_reply")
				continue
			}
			ch <- f // buffered 1
		case "text/event-plain":
			ev, err := ParsePlain(f.Body)
			if err != nil {
				c.onDrop("malformed_event")
				continue
			}
			if ev.Name() == "BACKGROUND_JOB" {
				c.mu.Lock()
				ch := c.jobs[ev.Get("Job-UUID")]
				delete(c.jobs, ev.Get("Job-UUID"))
				c.mu.Unlock()
				if ch != nil {
					ch <- ev // buffered 1
				} else {
					c.onDrop("unknown_job")
				}
				continue
			}
			select {
			case c.events <- ev:
			case <-c.done:
				return
			}
		case "text/disconnect-notice":
			c.fail(ErrDisconnected)
			return
		case "text/rude-rejection":
			c.fail(ErrRejected)
			return
		case "log/data":
		default:
			c.onDrop("unknown_content_type")
		}
	}
}

// command writes one command (a first line, optional header lines) and waits
// for its command/reply or api/response frame.
func (c *Conn) command(ctx context.Context, line string, headers ...string) (*Frame, error) {
	if strings.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("esl: command contains a line break: %q", capText(line))
	}
	ch := make(chan *Frame, 1)
	var b strings.Builder
	b.WriteString(line)
	b.WriteByte('\n')
	for _, h := range headers {
		b.WriteString(h)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	c.wmu.Lock()
	select {
	case <-c.done:
		c.wmu.Unlock()
		return nil, c.err
	default:
	}
	c.mu.Lock()
	c.pending = append(c.pending, ch)
	c.mu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.nc.Write([]byte(b.String()))
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("esl: writing: %w", err))
		return nil, c.err
	}
	select {
	case f := <-ch:
		return f, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		// The reply still arrives and is matched to this (abandoned)
		// slot, so later commands stay aligned.
		return nil, ctx.Err()
	}
}

// Subscribe asks for events in plain format: "event plain NAMES...". In
// the list, every token after CUSTOM is read as a subclass
// (mod_event_socket.c parse_command), so CUSTOM and its subclasses go last.
func (c *Conn) Subscribe(ctx context.Context, names string) error {
	f, err := c.command(ctx, "event plain "+names)
	if err != nil {
		return err
	}
	if r := f.Header("Reply-Text"); !strings.HasPrefix(r, "+OK") {
		return &CommandError{Command: "event", Reply: r}
	}
	return nil
}

// API runs "api CMD" and returns the api/response body. A body starting
// with "-ERR" (for example "-ERR No such channel!" from uuid_kill, or
// "-ERR CMD Command not found!") is returned with a *CommandError.
func (c *Conn) API(ctx context.Context, cmd string) (string, error) {
	f, err := c.command(ctx, "api "+cmd)
	if err != nil {
		return "", err
	}
	if ct := f.ContentType(); ct != "api/response" {
		// An ACL-restricted listener answers a refused api with a
		// command/reply "-ERR permission denied".
		return "", &CommandError{Command: firstWord(cmd), Reply: f.Header("Reply-Text")}
	}
	body := string(f.Body)
	if strings.HasPrefix(body, "-ERR") {
		return body, &CommandError{Command: firstWord(cmd), Reply: body}
	}
	return body, nil
}

// BgAPI runs "bgapi CMD" and waits for its BACKGROUND_JOB event, matched by
// a Job-UUID chosen here and sent as a header (mod_event_socket.c
// parse_command copies it into the job), so the result cannot arrive
// before the wait is registered. The connection must be subscribed to
// BACKGROUND_JOB. It returns the job's body.
func (c *Conn) BgAPI(ctx context.Context, cmd string) (string, error) {
	id, err := newUUID()
	if err != nil {
		return "", err
	}
	ch := make(chan *Event, 1)
	c.mu.Lock()
	c.jobs[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.jobs, id)
		c.mu.Unlock()
	}()
	f, err := c.command(ctx, "bgapi "+cmd, "Job-UUID: "+id)
	if err != nil {
		return "", err
	}
	if r := f.Header("Reply-Text"); !strings.HasPrefix(r, "+OK") {
		return "", &CommandError{Command: firstWord(cmd), Reply: r}
	}
	select {
	case ev := <-ch:
		if strings.HasPrefix(ev.Body, "-ERR") {
			return ev.Body, &CommandError{Command: firstWord(cmd), Reply: ev.Body}
		}
		return ev.Body, nil
	case <-c.done:
		return "", c.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func firstWord(s string) string {
	w, _, _ := strings.Cut(s, " ")
	return capText(w)
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("esl: job uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
