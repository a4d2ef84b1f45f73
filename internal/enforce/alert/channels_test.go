package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
)

// captured is one request a test server received.
type captured struct {
	method, path, contentType string
	query                     url.Values
	header                    http.Header
	body                      []byte
}

// recorder is a test server that records requests and answers with reply.
type recorder struct {
	mu    sync.Mutex
	reqs  []captured
	reply func(n int) (int, string)
	srv   *httptest.Server
}

func newRecorder(t *testing.T, reply func(n int) (int, string)) *recorder {
	r := &recorder{reply: reply}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, captured{req.Method, req.URL.Path, req.Header.Get("Content-Type"), req.URL.Query(), req.Header.Clone(), body})
		n := len(r.reqs)
		r.mu.Unlock()
		code, text := r.reply(n)
		w.WriteHeader(code)
		io.WriteString(w, text)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) got() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.reqs...)
}

func ok(int) (int, string) { return 200, `{"errcode":0,"errmsg":"ok"}` }

var fixed = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

func testOptions() Options {
	return Options{Node: "edge-1", Location: time.UTC, Now: func() time.Time { return fixed }}
}

// attackerBan is a ban whose User-Agent and account try to inject markup.
func attackerBan() *Message {
	a := Alert{Kind: KindBan, Time: fixed, Addr: netip.MustParseAddr("203.0.113.66"), Account: "13812345678",
		Rule: "scanner", For: time.Hour, UserAgent: "friendly-scanner\n@all [win](http://evil.example) <@all>"}
	return &Message{Kind: KindBan, Severity: Warning, Count: 1, Alerts: []Alert{a}, Since: fixed, Until: fixed}
}

func build(t *testing.T, cc config.AlertChannel) sender {
	t.Helper()
	cfg := config.Default().Alerts
	o := testOptions()
	o.defaults()
	s, err := newSender(cc, cfg, &o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWebhookSignedJSON(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 204, "" })
	s := build(t, config.AlertChannel{Name: "siem", Type: "webhook", URL: rec.srv.URL + "/hook", Secret: "s3cret"})
	if err := s.send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	reqs := rec.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.method != "POST" || r.path != "/hook" || r.contentType != "application/json; charset=utf-8" {
		t.Errorf("request %s %s %s", r.method, r.path, r.contentType)
	}
	ts := r.header.Get(HeaderTimestamp)
	if ts != strconv.FormatInt(fixed.Unix(), 10) {
		t.Errorf("timestamp header %q", ts)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(ts + "." + string(r.body)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.header.Get(HeaderSignature) != want {
		t.Errorf("signature %q, want %q", r.header.Get(HeaderSignature), want)
	}
	var p WebhookPayload
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatal(err)
	}
	a := p.Alerts[0]
	if p.Version != 1 || p.Channel != "siem" || p.Kind != KindBan || p.Count != 1 || p.Severity != "warning" ||
		a.Addr != "203.0.113.66" || a.Account != "138****5678" || a.BanSeconds != 3600 || a.Rule != "scanner" {
		t.Errorf("payload %+v", p)
	}
	if strings.Contains(string(r.body), "12345678") || strings.Contains(a.UserAgent, "\n") {
		t.Errorf("number unmasked or control characters kept: %s", r.body)
	}
}

func TestWebhookUnsignedHasNoSignature(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 200, "" })
	s := build(t, config.AlertChannel{Name: "siem", Type: "webhook", URL: rec.srv.URL})
	if err := s.send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	if h := rec.got()[0].header; h.Get(HeaderSignature) != "" || h.Get(HeaderTimestamp) != "" {
		t.Errorf("signature headers without a secret: %v", h)
	}
}

func TestDingTalkSignedMarkdown(t *testing.T) {
	rec := newRecorder(t, ok)
	s := build(t, config.AlertChannel{Name: "ops", Type: "dingtalk", Language: "zh-CN", URL: rec.srv.URL + "/robot/send",
		AccessToken: "tok123", Secret: "SECabc", Keywords: []string{"tollguard", "盗打"}})
	if err := s.send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	r := rec.got()[0]
	if r.path != "/robot/send" || r.query.Get("access_token") != "tok123" {
		t.Errorf("path %s query %v", r.path, r.query)
	}
	ts := r.query.Get("timestamp")
	if ts != strconv.FormatInt(fixed.UnixMilli(), 10) {
		t.Errorf("timestamp %q, want milliseconds", ts)
	}
	mac := hmac.New(sha256.New, []byte("SECabc"))
	mac.Write([]byte(ts + "\n" + "SECabc"))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); r.query.Get("sign") != want {
		t.Errorf("sign %q, want %q", r.query.Get("sign"), want)
	}
	var body struct {
		MsgType  string `json:"msgtype"`
		Markdown struct {
			Title string `json:"title"`
			Text  string `json:"text"`
		} `json:"markdown"`
		At struct {
			IsAtAll bool `json:"isAtAll"`
		} `json:"at"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	text := body.Markdown.Text
	if body.MsgType != "markdown" || body.At.IsAtAll || !strings.Contains(body.Markdown.Title, "来源已封禁") {
		t.Errorf("body %s", r.body)
	}
	for _, w := range []string{"封禁 203.0.113.66", "tollguard", "盗打", "时长 1h0m0s"} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
	for _, bad := range []string{"@all", "](", "<@", "http://", "12345678"} {
		if strings.Contains(text, bad) {
			t.Errorf("text carries %q:\n%s", bad, text)
		}
	}
}

// The sign must be URL-encoded in the query: a base64 '+' sent raw would
// arrive as a space.
func TestDingTalkSignEncoding(t *testing.T) {
	var raw string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw = r.URL.RawQuery
		io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`)
	}))
	defer srv.Close()
	// Find a timestamp whose sign has a '+' or '/'.
	ts := fixed
	for !strings.ContainsAny(DingTalkSign("k", ts.UnixMilli()), "+/") {
		ts = ts.Add(time.Millisecond)
	}
	cfg := config.Default().Alerts
	o := Options{Now: func() time.Time { return ts }}
	o.defaults()
	s, err := newSender(config.AlertChannel{Name: "d", Type: "dingtalk", URL: srv.URL, AccessToken: "t", Secret: "k"}, cfg, &o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.send(t.Context(), attackerBan()); err != nil {
		t.Fatal(err)
	}
	want := "sign=" + url.QueryEscape(DingTalkSign("k", ts.UnixMilli()))
	if !strings.Contains(raw, want) {
		t.Errorf("raw query %q lacks %q", raw, want)
	}
}

func TestDingTalkTextAndErrcode(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 200, `{"errcode":310000,"errmsg":"keywords not in content"}` })
	s := build(t, config.AlertChannel{Name: "ops", Type: "dingtalk", Format: "text", URL: rec.srv.URL, AccessToken: "tok123"})
	err := s.send(t.Context(), attackerBan())
	if err == nil || !strings.Contains(err.Error(), "310000") || !isPermanent(err) {
		t.Fatalf("errcode 310000: %v (permanent %v)", err, isPermanent(err))
	}
	r := rec.got()[0]
	if r.query.Has("sign") || r.query.Has("timestamp") {
		t.Errorf("signed without a secret: %v", r.query)
	}
	var body struct {
		MsgType string `json:"msgtype"`
		Text    struct {
			Content string `json:"content"`
		} `json:"text"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.MsgType != "text" || !strings.Contains(body.Text.Content, "Banned 203.0.113.66") {
		t.Errorf("text body %s", r.body)
	}
	if strings.Contains(err.Error(), "tok123") {
		t.Errorf("error carries the access token: %v", err)
	}
}

func TestWeCom(t *testing.T) {
	for _, format := range []string{"markdown", "text"} {
		t.Run(format, func(t *testing.T) {
			rec := newRecorder(t, ok)
			s := build(t, config.AlertChannel{Name: "noc", Type: "wecom", Format: format, Language: "zh-CN",
				URL: rec.srv.URL + "/cgi-bin/webhook/send", Key: "key-42"})
			if err := s.send(t.Context(), attackerBan()); err != nil {
				t.Fatal(err)
			}
			r := rec.got()[0]
			if r.path != "/cgi-bin/webhook/send" || r.query.Get("key") != "key-42" || len(r.query) != 1 {
				t.Errorf("path %s query %v", r.path, r.query)
			}
			var keys map[string]json.RawMessage
			if err := json.Unmarshal(r.body, &keys); err != nil || len(keys) != 2 || string(keys["msgtype"]) != `"`+format+`"` {
				t.Fatalf("body %s", r.body)
			}
			var part struct {
				Content string `json:"content"`
			}
			if err := json.Unmarshal(keys[format], &part); err != nil {
				t.Fatal(err)
			}
			content := part.Content
			if !strings.Contains(content, "封禁 203.0.113.66") || strings.Contains(content, "12345678") {
				t.Errorf("content %s", content)
			}
			if strings.Contains(content, "<@") || strings.Contains(content, "@all") {
				t.Errorf("mention in %s", content)
			}
		})
	}
}

func TestWeComTooFastIsRetryable(t *testing.T) {
	rec := newRecorder(t, func(int) (int, string) { return 200, `{"errcode":45009,"errmsg":"api freq out of limit"}` })
	s := build(t, config.AlertChannel{Name: "noc", Type: "wecom", URL: rec.srv.URL, Key: "k"})
	if err := s.send(t.Context(), attackerBan()); err == nil || isPermanent(err) {
		t.Errorf("45009: %v, want a retryable error", err)
	}
}

// Failed deliveries name the host, never the credentials in the query.
func TestErrorsHideSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := srv.URL
	srv.Close() // nothing listens any more
	var logs bytes.Buffer
	cfg := config.Default().Alerts
	cfg.Channels = []config.AlertChannel{
		{Name: "d", Type: "dingtalk", URL: addr, AccessToken: "TOKEN-SECRET", Secret: "SEC-SECRET"},
		{Name: "w", Type: "wecom", URL: addr, Key: "KEY-SECRET"},
		{Name: "h", Type: "webhook", URL: addr + "/hooks/PATH-SECRET?token=QUERY-SECRET", Secret: "HMAC-SECRET"},
	}
	o := testOptions()
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	for _, name := range []string{"d", "w", "h"} {
		err := SendTest(t.Context(), cfg, name, o)
		if err == nil {
			t.Fatalf("%s: no error from a closed port", name)
		}
		for _, secret := range []string{"TOKEN-SECRET", "SEC-SECRET", "KEY-SECRET", "PATH-SECRET", "QUERY-SECRET", "HMAC-SECRET", "sign="} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: error %q carries %s", name, err, secret)
			}
		}
	}
}

// A webhook answering 500 is retried with backoff until it accepts.
func TestRetryOn500(t *testing.T) {
	rec := newRecorder(t, func(n int) (int, string) {
		if n < 3 {
			return 500, "busy"
		}
		return 200, ""
	})
	c := &channel{s: build(t, config.AlertChannel{Name: "h", Type: "webhook", URL: rec.srv.URL}), retries: 3, backoff: time.Millisecond, timeout: 5 * time.Second}
	n, err := c.sendRetrying(t.Context(), attackerBan())
	if err != nil || n != 3 || len(rec.got()) != 3 {
		t.Errorf("attempts %d, err %v, requests %d; want success on the 3rd", n, err, len(rec.got()))
	}
	// A 4xx is the receiver refusing: no retry.
	rec2 := newRecorder(t, func(int) (int, string) { return 403, "no" })
	c.s = build(t, config.AlertChannel{Name: "h", Type: "webhook", URL: rec2.srv.URL})
	if n, err := c.sendRetrying(t.Context(), attackerBan()); err == nil || n != 1 {
		t.Errorf("403: attempts %d err %v, want one attempt", n, err)
	}
}

// A receiver that never answers costs one timeout per attempt.
func TestSlowReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := &channel{s: build(t, config.AlertChannel{Name: "h", Type: "webhook", URL: srv.URL}), retries: 1, backoff: time.Millisecond, timeout: 50 * time.Millisecond}
	n, err := c.sendRetrying(t.Context(), attackerBan())
	if !errors.Is(err, context.DeadlineExceeded) || n != 2 {
		t.Errorf("attempts %d err %v, want 2 attempts ending in a deadline", n, err)
	}
}
