package sipfw

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of the reason label of
// tollguard_sipfw_drops_total. The set is fixed so the label stays bounded.
const (
	dropGate       = "gate"         // the Gate refused the source before parsing
	dropVerdict    = "verdict"      // the Checker said Drop
	dropMalformed  = "malformed"    // unparsable or missing mandatory headers
	dropTooLarge   = "too_large"    // larger than MaxMessageSize
	dropStray      = "stray"        // a response whose top Via is not ours
	dropNoRoute    = "no_route"     // no flow or address to send to
	dropSendError  = "send_error"   // the write failed
	dropQueueFull  = "queue_full"   // a stream connection's write queue was full
	dropConnLimit  = "conn_limit"   // too many stream connections
	dropTLS        = "tls"          // the TLS handshake failed
	dropAckRefused = "ack_refused"  // an ACK that would have been refused (ACKs get no response)
	dropForged     = "forged"       // a response naming this proxy without a flow token it minted for that direction
	dropConnEvict  = "conn_evicted" // an idle connection that never registered, closed to make room
	dropConnIdle   = "conn_idle"    // a connection closed for its first-message or idle deadline
	dropRoute      = "route"        // a source the listener's route does not admit (allow_sources, deny_sources)
	dropWS         = "ws"           // a WebSocket handshake or framing error, no "sip" subprotocol, a ping flood
	dropWSOrigin   = "ws_origin"    // a WebSocket handshake from a browser page whose origin is not allowed
	dropGreylist   = "greylist"     // a stranger's UDP request held until its client retransmits it
)

var dropReasons = []string{dropGate, dropVerdict, dropMalformed, dropTooLarge, dropStray,
	dropNoRoute, dropSendError, dropQueueFull, dropConnLimit, dropTLS, dropAckRefused, dropForged,
	dropConnEvict, dropConnIdle, dropRoute, dropWS, dropWSOrigin, dropGreylist}

// knownMethods bounds the method label; anything else counts as "OTHER".
var knownMethods = []string{"REGISTER", "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS",
	"MESSAGE", "SUBSCRIBE", "NOTIFY", "INFO", "UPDATE", "PRACK", "REFER", "PUBLISH", "OTHER"}

// metrics holds the proxy's Prometheus collectors, with the label children
// resolved up front so the hot path does not allocate.
type metrics struct {
	requests  map[string]prometheus.Counter
	responses [7]prometheus.Counter // index = class 1..6, 0 = invalid
	drops     map[string]prometheus.Counter
	rejects   *prometheus.CounterVec
	latency   prometheus.Histogram
	evictions *prometheus.CounterVec
	upstream  *prometheus.GaugeVec
	hangups   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollguard_sipfw_requests_total",
		Help: "SIP requests received, by method (unknown methods count as OTHER).",
	}, []string{"method"})
	resps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollguard_sipfw_responses_total",
		Help: "SIP responses received, by class (1xx..6xx).",
	}, []string{"class"})
	drops := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollguard_sipfw_drops_total",
		Help: "Messages or connections dropped without forwarding, by reason.",
	}, []string{"reason"})
	rejects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollguard_sipfw_rejects_total",
		Help: "Requests answered by the proxy itself instead of being forwarded, by status code.",
	}, []string{"code"})
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "tollguard_sipfw_forward_latency_seconds",
		Help:    "Time from reading a message to writing it to its next hop.",
		Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3},
	})
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollguard_sipfw_table_evictions_total",
		Help: "Entries evicted from the bounded tables because they were full: pending requests, unanswered calls (dialog), running calls (call).",
	}, []string{"table"})
	hangups := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tollguard_sipfw_hangups_total",
		Help: "Calls the proxy ended itself with a BYE to both sides, by cause (hangup, deadline) and result (ok, failed).",
	}, []string{"cause", "result"})
	upstream := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tollguard_sipfw_upstream_up",
		Help: "1 while the route's upstream answers, 0 after it failed to answer within upstream_timeout.",
	}, []string{"route"})
	m := &metrics{
		requests: make(map[string]prometheus.Counter, len(knownMethods)),
		drops:    make(map[string]prometheus.Counter, len(dropReasons)),
		rejects:  rejects, latency: latency, evictions: evictions, upstream: upstream, hangups: hangups,
	}
	for _, c := range []prometheus.Collector{reqs, resps, drops, rejects, latency, evictions, upstream, hangups} {
		if reg == nil {
			break
		}
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, meth := range knownMethods {
		m.requests[meth] = reqs.WithLabelValues(meth)
	}
	m.responses[0] = resps.WithLabelValues("invalid")
	for i := 1; i <= 6; i++ {
		m.responses[i] = resps.WithLabelValues(string(rune('0'+i)) + "xx")
	}
	for _, r := range dropReasons {
		m.drops[r] = drops.WithLabelValues(r)
	}
	evictions.WithLabelValues("pending")
	evictions.WithLabelValues("dialog")
	evictions.WithLabelValues("call")
	return m, nil
}

func (m *metrics) request(method string) {
	c, ok := m.requests[method]
	if !ok {
		c = m.requests["OTHER"]
	}
	c.Inc()
}

func (m *metrics) response(code int) {
	class := code / 100
	if class < 1 || class > 6 {
		class = 0
	}
	m.responses[class].Inc()
}

func (m *metrics) drop(reason string) { m.drops[reason].Inc() }

func (m *metrics) reject(code int) { m.rejects.WithLabelValues(codeLabel(code)).Inc() }

func (m *metrics) forwarded(since time.Time, now time.Time) {
	m.latency.Observe(now.Sub(since).Seconds())
}

// codeLabel keeps the code label bounded to valid status codes.
func codeLabel(code int) string {
	if code < 100 || code > 699 {
		return "other"
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}
