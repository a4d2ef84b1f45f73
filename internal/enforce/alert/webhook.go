package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/store"
)

// Webhook signature headers. The signature is "sha256=" and the hex
// HMAC-SHA256, keyed with the channel's secret, of the timestamp, a dot and
// the body; a receiver recomputes it and rejects old timestamps (replay).
const (
	HeaderTimestamp = "X-Tollguard-Timestamp"
	HeaderSignature = "X-Tollguard-Signature"
)

// Sign returns the X-Tollguard-Signature value for body sent at unix
// second ts.
func Sign(secret string, ts int64, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(ts, 10)))
	h.Write([]byte{'.'})
	h.Write(body)
	return "sha256=" + hex.EncodeToString(h.Sum(nil))
}

// WebhookPayload is the JSON body a webhook receives (version 1).
type WebhookPayload struct {
	Version  int       `json:"version"`
	Channel  string    `json:"channel"`
	Node     string    `json:"node"`
	Kind     Kind      `json:"kind"`
	Severity string    `json:"severity"`
	Count    int       `json:"count"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	// Title and Text are the rendered message, in the channel's language.
	Title  string         `json:"title"`
	Text   string         `json:"text"`
	Rules  map[string]int `json:"rules,omitempty"`
	Alerts []WebhookAlert `json:"alerts"`
}

// WebhookAlert is one alert in a WebhookPayload; phone numbers are masked
// and attacker text is capped.
type WebhookAlert struct {
	Kind        Kind      `json:"kind"`
	Severity    string    `json:"severity"`
	Time        time.Time `json:"time"`
	Addr        string    `json:"addr,omitempty"`
	Account     string    `json:"account,omitempty"`
	Destination string    `json:"destination,omitempty"`
	Rule        string    `json:"rule,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	UserAgent   string    `json:"user_agent,omitempty"`
	BanSeconds  float64   `json:"ban_seconds,omitempty"`
	Amount      float64   `json:"amount,omitempty"`
	Threshold   float64   `json:"threshold,omitempty"`
	Currency    string    `json:"currency,omitempty"`
	Lockdown    string    `json:"lockdown,omitempty"`
	Target      string    `json:"target,omitempty"`
	Resolved    bool      `json:"resolved,omitempty"`
}

// plain masks phone numbers, drops control characters and caps s: for
// structured fields, where markup does not matter.
func plain(s string) string {
	s = strings.ToValidUTF8(store.MaskText(s), "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxField {
		s = string([]rune(s)[:maxField]) + "…"
	}
	return s
}

// webhook posts WebhookPayload JSON, signed when a secret is set.
type webhook struct {
	name, secret string
	u            *url.URL
	r            *renderer
	c            *http.Client
	now          func() time.Time
}

func (w *webhook) payload(m *Message) WebhookPayload {
	p := WebhookPayload{Version: 1, Channel: w.name, Node: w.r.node, Kind: m.Kind, Severity: m.Severity.String(),
		Count: m.Count, Since: m.Since, Until: m.Until, Title: w.r.title(m), Text: w.r.body(m), Alerts: []WebhookAlert{}}
	if len(m.Rules) > 0 {
		p.Rules = map[string]int{}
		for r, n := range m.Rules {
			p.Rules[plain(r)] += n
		}
	}
	for _, a := range m.Alerts {
		wa := WebhookAlert{Kind: a.Kind, Severity: a.severity().String(), Time: a.Time,
			Account: plain(a.Account), Destination: plain(a.Destination), Rule: plain(a.Rule), Reason: plain(a.Reason),
			UserAgent: plain(a.UserAgent), BanSeconds: a.For.Seconds(), Amount: a.Amount, Threshold: a.Threshold,
			Currency: plain(a.Currency), Target: plain(a.Target), Resolved: a.Resolved}
		if a.Addr.IsValid() {
			wa.Addr = a.Addr.Unmap().String()
		}
		if a.Kind == KindLockdown {
			wa.Lockdown = map[bool]string{true: "on", false: "off"}[a.On]
		}
		p.Alerts = append(p.Alerts, wa)
	}
	return p
}

func (w *webhook) send(ctx context.Context, m *Message) error {
	body, err := json.Marshal(w.payload(m))
	if err != nil {
		return permanent(err)
	}
	h := map[string]string{}
	if w.secret != "" {
		ts := w.now().Unix()
		h[HeaderTimestamp] = strconv.FormatInt(ts, 10)
		h[HeaderSignature] = Sign(w.secret, ts, body)
	}
	_, err = postJSON(ctx, w.c, w.u, body, h)
	return err
}
