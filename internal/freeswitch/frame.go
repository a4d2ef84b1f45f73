package freeswitch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on what the reader accepts from the Event Socket. FreeSWITCH itself
// refuses bodies over 16 MiB (MAX_CONTENT_LENGTH in mod_event_socket.c,
// read_packet); the client is stricter, since nothing it subscribes to comes
// near that.
const (
	// MaxContentLength bounds one frame's body.
	MaxContentLength = 4 << 20
	// MaxHeaderLine bounds one header line of a frame.
	MaxHeaderLine = 16 << 10
	// MaxHeaders bounds the header lines of one frame.
	MaxHeaders = 64
)

// ErrFrame wraps every framing error: the stream cannot be trusted after it
// and the connection must be dropped.
var ErrFrame = errors.New("esl framing")

// Frame is one message from the Event Socket: its outer headers and body.
// mod_event_socket writes the headers in no fixed order (events put
// Content-Length before Content-Type, see mod_event_socket.c
// listener_run), so they are a map. Names are kept as sent; Header looks
// them up without regard to case.
type Frame struct {
	Headers map[string]string
	Body    []byte
}

// Header returns the value of the named header, or "".
func (f *Frame) Header(name string) string {
	if v, ok := f.Headers[name]; ok {
		return v
	}
	for k, v := range f.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// ContentType returns the frame's Content-Type.
func (f *Frame) ContentType() string { return f.Header("Content-Type") }

// Reader reads frames from an Event Socket stream.
type Reader struct {
	r *bufio.Reader
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10)}
}

// ReadFrame reads one frame: header lines up to an empty line, then, when
// Content-Length is present, exactly that many bytes of body. Leading empty
// lines are skipped. A carriage return before a newline is ignored, as
// FreeSWITCH's own reader does. It returns io.EOF only when the stream ends
// cleanly between frames; any other error wraps ErrFrame or is the
// transport's error (io.ErrUnexpectedEOF for a frame cut short).
func (rd *Reader) ReadFrame() (*Frame, error) {
	f := &Frame{Headers: make(map[string]string, 4)}
	started := false
	lines := 0
	for {
		line, err := rd.line()
		if err != nil {
			if err == io.EOF && started {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if line == "" {
			if !started {
				continue
			}
			break
		}
		started = true
		if lines++; lines > MaxHeaders {
			return nil, fmt.Errorf("%w: more than %d headers", ErrFrame, MaxHeaders)
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%w: header line without a name: %q", ErrFrame, capText(line))
		}
		name = strings.TrimSpace(name)
		if _, dup := f.Headers[name]; !dup {
			f.Headers[name] = strings.TrimSpace(value)
		}
	}
	cl := f.Header("Content-Length")
	if cl == "" {
		return f, nil
	}
	n, err := strconv.Atoi(cl)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%w: bad Content-Length %q", ErrFrame, capText(cl))
	}
	if n > MaxContentLength {
		return nil, fmt.Errorf("%w: Content-Length %d over the %d limit", ErrFrame, n, MaxContentLength)
	}
	// Grow the body as bytes arrive, so a peer that announces a large body
	// and sends nothing costs no memory.
	var body bytes.Buffer
	got, err := io.CopyN(&body, rd.r, int64(n))
	if err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("body cut at %d of %d bytes: %w", got, n, io.ErrUnexpectedEOF)
		}
		return nil, err
	}
	f.Body = body.Bytes()
	return f, nil
}

// line reads one line without its "\n" (and without a trailing "\r").
func (rd *Reader) line() (string, error) {
	var long []byte
	for {
		frag, err := rd.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, frag...)
			if len(long) > MaxHeaderLine {
				return "", fmt.Errorf("%w: header line over %d bytes", ErrFrame, MaxHeaderLine)
			}
			continue
		}
		if err != nil {
			if err == io.EOF && (len(long) > 0 || len(frag) > 0) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if long != nil {
			frag = append(long, frag...)
		}
		if len(frag) > MaxHeaderLine {
			return "", fmt.Errorf("%w: header line over %d bytes", ErrFrame, MaxHeaderLine)
		}
		frag = frag[:len(frag)-1]
		if n := len(frag); n > 0 && frag[n-1] == '\r' {
			frag = frag[:n-1]
		}
		return string(frag), nil
	}
}

// capText shortens attacker- or peer-supplied text for error messages.
func capText(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
