package alert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tollguard/tollguard/internal/config"
)

// ErrOutboxFull reports a message dropped because its channel was still
// busy delivering earlier ones (a dead or very slow channel).
var ErrOutboxFull = errors.New("channel outbox full: message dropped")

// outboxSize is how many finished messages wait for a busy channel. The
// rate limit keeps the rest folded into summaries.
const outboxSize = 8

// maxChannels bounds the channels (Notify routes with a 64-bit mask).
const maxChannels = 64

// Options are a Notifier's collaborators.
type Options struct {
	// Logger receives delivery failures (component=alert).
	Logger *slog.Logger
	// Registry receives the metrics; nil leaves them unregistered.
	Registry *prometheus.Registry
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Node names this guard in messages; default the host name.
	Node string
	// Location is the zone times are shown in; default time.Local.
	Location *time.Location
	// OnReport, when set, is called once per message sent, failed or
	// dropped, from the channel's goroutine; it must not block for long.
	OnReport func(Report)
	// Tick is how often summaries are checked for; default 1s.
	Tick time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Logger = o.Logger.With("component", "alert")
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Node == "" {
		o.Node, _ = os.Hostname()
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
}

// Notifier routes alerts to channels. Notify may be called from any
// goroutine, before or while Run runs.
type Notifier struct {
	chans []*channel
	rules []route
	opts  Options
	m     *metrics
}

// route is one compiled rule.
type route struct {
	mask  uint64 // channels, by index
	kinds map[Kind]bool
	min   Severity
}

// channel is one destination with its queue and state.
type channel struct {
	name, typ string
	s         sender
	queue     chan Alert
	out       chan *Message
	b         *batcher
	retries   int
	backoff   time.Duration
	timeout   time.Duration
}

// New builds a Notifier from the alerts config. Nothing is sent until Run.
func New(cfg config.Alerts, o Options) (*Notifier, error) {
	o.defaults()
	if len(cfg.Channels) > maxChannels {
		return nil, fmt.Errorf("alerts: at most %d channels", maxChannels)
	}
	n := &Notifier{opts: o}
	idx := map[string]int{}
	for i, cc := range cfg.Channels {
		s, err := newSender(cc, cfg, &o)
		if err != nil {
			return nil, err
		}
		idx[cc.Name] = i
		n.chans = append(n.chans, &channel{
			name: cc.Name, typ: cc.Type, s: s,
			queue: make(chan Alert, cfg.QueueSize), out: make(chan *Message, outboxSize),
			b:       newBatcher(cfg.Dedupe.D(), cfg.GroupInterval.D(), cfg.RateLimit),
			retries: cfg.Retries, backoff: cfg.Backoff.D(), timeout: cfg.Timeout.D(),
		})
	}
	rules := cfg.Rules
	if len(rules) == 0 && len(cfg.Channels) > 0 {
		all := config.AlertRule{}
		for _, c := range cfg.Channels {
			all.Channels = append(all.Channels, c.Name)
		}
		rules = []config.AlertRule{all}
	}
	for i, r := range rules {
		min, err := ParseSeverity(r.MinSeverity)
		if err != nil {
			return nil, fmt.Errorf("alerts.rules[%d]: %w", i, err)
		}
		rt := route{min: min}
		for _, name := range r.Channels {
			j, ok := idx[name]
			if !ok {
				return nil, fmt.Errorf("alerts.rules[%d]: no channel named %q", i, name)
			}
			rt.mask |= 1 << j
		}
		if len(r.Kinds) > 0 {
			rt.kinds = map[Kind]bool{}
			for _, k := range r.Kinds {
				rt.kinds[Kind(k)] = true
			}
		}
		n.rules = append(n.rules, rt)
	}
	names := make([]string, len(n.chans))
	for i, c := range n.chans {
		names[i] = c.name
	}
	m, err := newMetrics(o.Registry, names)
	if err != nil {
		return nil, err
	}
	n.m = m
	return n, nil
}

// Notify hands a over for delivery and returns at once: it never blocks
// and never does I/O. An alert no rule routes is ignored; one whose
// channel queue is full is dropped and counted. A nil Notifier (alerts
// not configured) ignores every alert.
func (n *Notifier) Notify(a Alert) {
	if n == nil {
		return
	}
	sev := a.severity()
	var mask uint64
	for i := range n.rules {
		r := &n.rules[i]
		if sev >= r.min && (r.kinds == nil || r.kinds[a.Kind]) {
			mask |= r.mask
		}
	}
	for i, c := range n.chans {
		if mask&(1<<i) == 0 {
			continue
		}
		select {
		case c.queue <- a:
		default:
			n.m.dropped[i].Inc()
		}
	}
}

// Run delivers alerts until ctx is done, then returns nil (also with no
// channels configured). Alerts still queued or held for a summary when it
// returns are not sent.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, c := range n.chans {
		wg.Go(func() { n.collect(ctx, i, c) })
		wg.Go(func() { n.deliver(ctx, i, c) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// collect owns c's batcher: alerts in, messages to the outbox.
func (n *Notifier) collect(ctx context.Context, i int, c *channel) {
	t := time.NewTicker(n.opts.Tick)
	defer t.Stop()
	var folded int
	for {
		var msgs []*Message
		select {
		case <-ctx.Done():
			return
		case a := <-c.queue:
			if m := c.b.add(a, n.opts.Now()); m != nil {
				msgs = append(msgs, m)
			}
		case <-t.C:
			msgs = c.b.due(n.opts.Now())
		}
		if d := c.b.suppressed - folded; d > 0 {
			n.m.suppressed[i].Add(float64(d))
			folded = c.b.suppressed
		}
		for _, m := range msgs {
			select {
			case c.out <- m:
			default:
				n.m.dropped[i].Add(float64(m.Count))
				n.report(Report{Channel: c.name, Kind: m.Kind, Severity: m.Severity, Count: m.Count, Err: ErrOutboxFull})
			}
		}
	}
}

// deliver sends c's messages one at a time, with retries.
func (n *Notifier) deliver(ctx context.Context, i int, c *channel) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.out:
			attempts, err := c.sendRetrying(ctx, m)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				n.m.failed[i].Inc()
				n.opts.Logger.Warn("alert not delivered", "channel", c.name, "type", c.typ, "kind", m.Kind,
					"count", m.Count, "attempts", attempts, "err", err)
			} else {
				n.m.sent[i].Inc()
			}
			n.report(Report{Channel: c.name, Kind: m.Kind, Severity: m.Severity, Count: m.Count, Attempts: attempts, Err: err})
		}
	}
}

func (n *Notifier) report(r Report) {
	if n.opts.OnReport != nil {
		n.opts.OnReport(r)
	}
}

// sendRetrying tries m up to 1+retries times, waiting backoff, 2×backoff,
// … between attempts; a permanent error stops at once.
func (c *channel) sendRetrying(ctx context.Context, m *Message) (int, error) {
	var err error
	for i := 0; i <= c.retries; i++ {
		if i > 0 {
			t := time.NewTimer(c.backoff << (i - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return i, ctx.Err()
			case <-t.C:
			}
		}
		sctx, cancel := context.WithTimeout(ctx, c.timeout)
		err = c.s.send(sctx, m)
		cancel()
		if err == nil || isPermanent(err) {
			return i + 1, err
		}
	}
	return c.retries + 1, err
}

// SendTest sends one test message to the channel called name, once, and
// returns the delivery error. It needs no running daemon.
func SendTest(ctx context.Context, cfg config.Alerts, name string, o Options) error {
	cc := cfg.Channel(name)
	if cc == nil {
		return fmt.Errorf("no alert channel named %q in alerts.channels", name)
	}
	o.defaults()
	s, err := newSender(*cc, cfg, &o)
	if err != nil {
		return err
	}
	now := o.Now()
	m := &Message{Kind: KindTest, Severity: Info, Count: 1, Alerts: []Alert{{Kind: KindTest, Severity: Info, Time: now}}, Since: now, Until: now}
	sctx, cancel := context.WithTimeout(ctx, cfg.Timeout.D())
	defer cancel()
	if err := s.send(sctx, m); err != nil {
		return fmt.Errorf("channel %s (%s): %w", name, cc.Type, err)
	}
	return nil
}

// newSender builds the sender of one channel.
func newSender(cc config.AlertChannel, cfg config.Alerts, o *Options) (sender, error) {
	r := &renderer{lang: cc.Language, markdown: cc.Format != "text", node: o.Node, loc: o.Location}
	parse := func(def string) (*url.URL, error) {
		s := cc.URL
		if s == "" {
			s = def
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alert channel %s: url is not an http(s) URL", cc.Name)
		}
		return u, nil
	}
	switch cc.Type {
	case "webhook":
		u, err := parse("")
		if err != nil {
			return nil, err
		}
		r.markdown = false
		return &webhook{name: cc.Name, secret: cc.Secret, u: u, r: r, c: newHTTPClient(), now: o.Now}, nil
	case "dingtalk":
		u, err := parse(DingTalkURL)
		if err != nil {
			return nil, err
		}
		return &dingtalk{token: cc.AccessToken, secret: cc.Secret, keywords: cc.Keywords, base: u, r: r, c: newHTTPClient(), now: o.Now}, nil
	case "wecom":
		u, err := parse(WeComURL)
		if err != nil {
			return nil, err
		}
		return &wecom{key: cc.Key, base: u, r: r, c: newHTTPClient()}, nil
	case "email":
		sm := cc.SMTP
		host, _, err := net.SplitHostPort(sm.Addr)
		if err != nil {
			return nil, fmt.Errorf("alert channel %s: smtp.addr: %w", cc.Name, err)
		}
		mode := sm.TLS
		if mode == "" {
			mode = "starttls"
		}
		if mode == "none" && sm.Username != "" {
			return nil, fmt.Errorf("alert channel %s: credentials are never sent without TLS", cc.Name)
		}
		var roots *x509.CertPool
		if sm.CAFile != "" {
			pem, err := os.ReadFile(sm.CAFile)
			if err != nil {
				return nil, fmt.Errorf("alert channel %s: reading smtp.ca_file: %w", cc.Name, err)
			}
			roots = x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("alert channel %s: smtp.ca_file %s holds no PEM certificate", cc.Name, sm.CAFile)
			}
		}
		r.markdown = false
		return &email{addr: sm.Addr, host: host, mode: mode, roots: roots, user: sm.Username, pass: sm.Password,
			from: sm.From, to: sm.To, helo: heloName(o.Node), r: r, now: o.Now}, nil
	}
	return nil, fmt.Errorf("alert channel %s: unknown type %q", cc.Name, cc.Type)
}

// heloName is a host name safe for EHLO.
func heloName(node string) string {
	for _, r := range node {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "localhost"
		}
	}
	if node == "" {
		return "localhost"
	}
	return node
}
