package intel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// errNotModified reports that a feed has not changed since the last pull.
var errNotModified = errors.New("not modified")

// errTooLarge reports a body over max_bytes.
var errTooLarge = errors.New("larger than max_bytes")

// fetched is one response body and the validators to send next time.
type fetched struct {
	body         []byte
	status       int
	etag         string
	lastModified string
}

// fetchHTTP GETs u with the given conditional validators and headers. The
// error never contains the URL (it may hold a key).
func fetchHTTP(ctx context.Context, c *http.Client, u string, hdr http.Header, etag, lastMod string, timeout time.Duration, maxBytes int64) (fetched, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fetched{}, errors.New("bad url")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "tollguard-intel")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if lastMod != "" {
		req.Header.Set("If-Modified-Since", lastMod)
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fetched{}, fmt.Errorf("GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return fetched{status: resp.StatusCode}, errNotModified
	}
	if resp.ContentLength > maxBytes {
		return fetched{}, fmt.Errorf("%w: Content-Length %d", errTooLarge, resp.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return fetched{}, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > maxBytes {
		return fetched{}, fmt.Errorf("%w (%d bytes)", errTooLarge, maxBytes)
	}
	return fetched{body: body, status: resp.StatusCode, etag: resp.Header.Get("ETag"),
		lastModified: resp.Header.Get("Last-Modified")}, nil
}

// fileState is what a file feed remembers to skip unchanged files.
type fileState struct {
	mod  time.Time
	size int64
}

// fetchFile reads a file feed unless it is unchanged since st.
func fetchFile(u string, st fileState, maxBytes int64) ([]byte, fileState, error) {
	path := strings.TrimPrefix(u, "file://")
	fi, err := os.Stat(path)
	if err != nil {
		return nil, st, fmt.Errorf("stat: %w", err)
	}
	now := fileState{mod: fi.ModTime(), size: fi.Size()}
	if now == st {
		return nil, st, errNotModified
	}
	if fi.Size() > maxBytes {
		return nil, st, fmt.Errorf("%w: %d bytes", errTooLarge, fi.Size())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, st, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f, maxBytes+1)); err != nil {
		return nil, st, fmt.Errorf("reading: %w", err)
	}
	if int64(buf.Len()) > maxBytes {
		return nil, st, fmt.Errorf("%w (%d bytes)", errTooLarge, maxBytes)
	}
	return buf.Bytes(), now, nil
}

// NewHTTPClient returns the client feeds use by default: it follows at
// most three redirects, and only to the same host without leaving HTTPS,
// so a key sent in a header cannot be handed to another server.
func NewHTTPClient() *http.Client {
	return &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("too many redirects")
		}
		first := via[0].URL
		if req.URL.Host != first.Host || (first.Scheme == "https" && req.URL.Scheme != "https") {
			return errors.New("redirect to another host or from https to http refused")
		}
		return nil
	}}
}
