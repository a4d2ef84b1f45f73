package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Official robot endpoints, used when a channel sets no url.
const (
	DingTalkURL = "https://oapi.dingtalk.com/robot/send"
	WeComURL    = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
)

// Robot API errcodes that mean "sending too fast": retried.
const (
	dingTalkTooFast = 130101
	weComTooFast    = 45009
)

// Size limits of the robot APIs: WeCom caps markdown at 4096 and text at
// 2048 bytes; DingTalk accepts more, but a long message helps nobody.
const (
	maxMarkdownBytes = 4000
	maxTextBytes     = 2000
)

// DingTalkSign returns the DingTalk custom robot's sign for timestamp ts
// (milliseconds): base64 of HMAC-SHA256 keyed with the secret over
// "ts\nsecret". It goes into the query URL-encoded.
func DingTalkSign(secret string, ts int64) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(strconv.FormatInt(ts, 10) + "\n" + secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// dingtalk posts to a DingTalk custom robot.
type dingtalk struct {
	token, secret string
	keywords      []string
	base          *url.URL
	r             *renderer
	c             *http.Client
	now           func() time.Time
}

// withKeywords appends the robot's security keywords the text lacks: the
// robot drops a message without one of them.
func withKeywords(text string, kws []string) string {
	var missing []string
	for _, k := range kws {
		if !strings.Contains(text, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return text
	}
	return text + "\n\n" + strings.Join(missing, " ")
}

func (d *dingtalk) send(ctx context.Context, m *Message) error {
	u := *d.base
	q := u.Query()
	q.Set("access_token", d.token)
	if d.secret != "" {
		ts := d.now().UnixMilli()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", DingTalkSign(d.secret, ts))
	}
	u.RawQuery = q.Encode()
	var body any
	if d.r.markdown {
		text := withKeywords(truncate(d.r.body(m), maxMarkdownBytes), d.keywords)
		body = map[string]any{"msgtype": "markdown",
			"markdown": map[string]string{"title": d.r.title(m), "text": text},
			"at":       map[string]any{"isAtAll": false}}
	} else {
		body = map[string]any{"msgtype": "text",
			"text": map[string]string{"content": withKeywords(truncate(d.r.body(m), maxTextBytes), d.keywords)},
			"at":   map[string]any{"isAtAll": false}}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return permanent(err)
	}
	reply, err := postJSON(ctx, d.c, &u, data, nil)
	if err != nil {
		return err
	}
	return checkRobotReply(reply, dingTalkTooFast)
}

// wecom posts to a WeCom (企业微信) group robot.
type wecom struct {
	key  string
	base *url.URL
	r    *renderer
	c    *http.Client
}

func (w *wecom) send(ctx context.Context, m *Message) error {
	u := *w.base
	q := u.Query()
	q.Set("key", w.key)
	u.RawQuery = q.Encode()
	var body any
	if w.r.markdown {
		body = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": truncate(w.r.body(m), maxMarkdownBytes)}}
	} else {
		body = map[string]any{"msgtype": "text", "text": map[string]string{"content": truncate(w.r.body(m), maxTextBytes)}}
	}
	data, err := json.Marshal(body)
	if err != nil {
		return permanent(err)
	}
	reply, err := postJSON(ctx, w.c, &u, data, nil)
	if err != nil {
		return err
	}
	return checkRobotReply(reply, weComTooFast)
}
