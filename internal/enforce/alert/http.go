package alert

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
)

// sender delivers one rendered message; one attempt, no retries (the
// channel loop retries). A *permanentError is not worth retrying.
type sender interface {
	send(ctx context.Context, m *Message) error
}

// permanentError marks a failure a retry cannot fix (a wrong token, a
// refused request).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// isPermanent reports whether err should not be retried.
func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// redact returns only u's scheme and host: robot URLs carry their
// credentials in the query (access_token, key, sign), and many webhook
// receivers in the path.
func redact(u *url.URL) string {
	return u.Scheme + "://" + u.Host
}

// newHTTPClient returns a client that does not follow redirects (a
// redirect would carry the signature and body elsewhere).
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// postJSON posts body to u with headers and returns the response body (up
// to 64 KiB). Errors never contain the URL's query. Status 429 and 5xx are
// retryable; other non-2xx statuses are permanent.
func postJSON(ctx context.Context, c *http.Client, u *url.URL, body []byte, headers map[string]string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, permanent(fmt.Errorf("building request to %s: %w", redact(u), errors.New("bad URL")))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "tollguard-alert")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error names the whole URL, credentials included: keep only
		// the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("posting to %s: %w", redact(u), err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("posting to %s: status %d: %q", redact(u), resp.StatusCode, snippet(data))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			return nil, err
		}
		return nil, permanent(err)
	}
	return data, nil
}

// robotReply is the answer of the DingTalk and WeCom robot APIs.
type robotReply struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// checkRobotReply turns a robot API answer into an error. retryable lists
// the errcodes that mean "too fast, try later".
func checkRobotReply(data []byte, retryable ...int) error {
	var r robotReply
	if err := json.Unmarshal(data, &r); err != nil || r.ErrCode == nil {
		return fmt.Errorf("unexpected answer %q", snippet(data))
	}
	if *r.ErrCode == 0 {
		return nil
	}
	err := fmt.Errorf("robot refused the message: errcode %d: %q", *r.ErrCode, snippet([]byte(r.ErrMsg)))
	for _, c := range retryable {
		if *r.ErrCode == c {
			return err
		}
	}
	return permanent(err)
}

// snippet is the start of a peer's answer, for an error message.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
