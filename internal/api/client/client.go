// Package client is the admin API's Go client, used by the tollguard
// command-line commands: it resolves the daemon's address and token the way
// DESIGN's contract says (-c FILE, --admin, --token-file, the default config
// path, built-in defaults) and turns HTTP failures into errors an operator
// can act on.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/api"
)

// Client talks to one tollguard daemon. It is safe for concurrent use.
type Client struct {
	// BaseURL is the daemon's admin URL, without trailing slash
	// ("http://127.0.0.1:9061").
	BaseURL string
	// TokenFile is where Token was read from, for error messages.
	TokenFile string
	token     string
	http      *http.Client
}

// New returns a Client for baseURL with token. Most callers use Resolve.
func New(baseURL, token string) *Client {
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		token:   token,
		http:    &http.Client{Timeout: 30 * time.Second},
	}
}

// ErrUnreachable marks a failure to connect to the daemon at all.
var ErrUnreachable = errors.New("daemon unreachable")

// ErrUnauthorized marks a request the daemon refused for its token.
var ErrUnauthorized = errors.New("token rejected")

// Error is a non-2xx answer from the daemon other than 401.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Message is the daemon's {"error": ...} text.
	Message string
}

// Error returns the daemon's message.
func (e *Error) Error() string { return e.Message }

// NotFound reports whether err is a 404 from the daemon.
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Do sends method path (with query, if any) and body (JSON-encoded when not
// nil) and decodes a 2xx answer into out (when not nil). Errors wrap
// ErrUnreachable, ErrUnauthorized, or are an *Error.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("cannot reach tollguard at %s: is `tollguard serve` running? (%w: %v)", c.BaseURL, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading answer from %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := errorMessage(data, resp.Status)
		if resp.StatusCode == http.StatusUnauthorized {
			src := "the token"
			if c.TokenFile != "" {
				src = "the token in " + c.TokenFile
			}
			return fmt.Errorf("%w: %s: %s is not the one the daemon at %s uses (check -c, --token-file, or the daemon's data_dir)",
				ErrUnauthorized, msg, src, c.BaseURL)
		}
		return &Error{Status: resp.StatusCode, Message: msg}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding answer from %s%s: %w", c.BaseURL, path, err)
	}
	return nil
}

// errorMessage extracts {"error": ...} or falls back to the status line.
func errorMessage(data []byte, status string) string {
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	return "HTTP " + status
}

// Bans returns the daemon's jail settings, failure history and active bans.
func (c *Client) Bans(ctx context.Context) (api.BanSummary, error) {
	var s api.BanSummary
	err := c.Do(ctx, http.MethodGet, "/api/v1/bans", nil, nil, &s)
	return s, err
}

// Ban places an operator ban and returns it.
func (c *Client) Ban(ctx context.Context, b api.BanBody) (api.BanReply, error) {
	var r api.BanReply
	err := c.Do(ctx, http.MethodPost, "/api/v1/bans", nil, b, &r)
	return r, err
}

// Unban lifts the bans on ip (only account's, when account is set) and
// returns them. No ban in force is a 404 *Error (see NotFound).
func (c *Client) Unban(ctx context.Context, ip, account string) (api.UnbanReply, error) {
	var q url.Values
	if account != "" {
		q = url.Values{"account": {account}}
	}
	var r api.UnbanReply
	err := c.Do(ctx, http.MethodDelete, "/api/v1/bans/"+url.PathEscape(ip), q, nil, &r)
	return r, err
}

// Calls returns the running calls; unmask asks for phone numbers in full
// (recorded as an admin action by the daemon).
func (c *Client) Calls(ctx context.Context, unmask bool) (api.CallsReply, error) {
	var q url.Values
	if unmask {
		q = url.Values{"unmask": {"true"}}
	}
	var r api.CallsReply
	err := c.Do(ctx, http.MethodGet, "/api/v1/calls", q, nil, &r)
	return r, err
}

// Hangup ends a running call with a BYE to both sides. An unknown call is
// a 404 *Error (see NotFound).
func (c *Client) Hangup(ctx context.Context, id string) (api.HangupReply, error) {
	var r api.HangupReply
	err := c.Do(ctx, http.MethodPost, "/api/v1/calls/"+url.PathEscape(id)+"/hangup", nil, nil, &r)
	return r, err
}

// Lockdown returns the lockdown state.
func (c *Client) Lockdown(ctx context.Context) (api.LockdownState, error) {
	var r api.LockdownState
	err := c.Do(ctx, http.MethodGet, "/api/v1/lockdown", nil, nil, &r)
	return r, err
}

// SetLockdown turns lockdown on or off; hangup also ends the running calls
// of accounts that may not call during lockdown.
func (c *Client) SetLockdown(ctx context.Context, on, hangup bool) (api.LockdownState, error) {
	var r api.LockdownState
	err := c.Do(ctx, http.MethodPut, "/api/v1/lockdown", nil, api.LockdownBody{On: on, Hangup: hangup}, &r)
	return r, err
}

// NewToken creates a call token secret for account.
func (c *Client) NewToken(ctx context.Context, account string) (api.TokenReply, error) {
	var r api.TokenReply
	err := c.Do(ctx, http.MethodPost, "/api/v1/tokens/"+url.PathEscape(account), nil, nil, &r)
	return r, err
}

// CheckCall asks the pre-call check about a call.
func (c *Client) CheckCall(ctx context.Context, account, ip, destination string) (api.CheckReply, error) {
	var r api.CheckReply
	q := url.Values{"account": {account}, "ip": {ip}, "destination": {destination}}
	err := c.Do(ctx, http.MethodGet, "/api/v1/check/call", q, nil, &r)
	return r, err
}
