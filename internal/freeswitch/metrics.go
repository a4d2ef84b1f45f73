package freeswitch

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connected prometheus.GaugeFunc
	seconds   prometheus.CounterFunc
	connects  prometheus.Counter
	events    *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	commands  *prometheus.CounterVec

	mu    sync.Mutex
	total time.Duration // closed connections
	since time.Time     // start of the current connection; guarded by Source.mu
}

func newMetrics(reg prometheus.Registerer, s *Source) (*metrics, error) {
	m := &metrics{}
	up := func() bool { return s.current() != nil }
	m.connected = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollguard_esl_connected",
		Help: "1 while the Event Socket connection is up and subscribed."}, func() float64 {
		if up() {
			return 1
		}
		return 0
	})
	m.seconds = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tollguard_esl_connected_seconds_total",
		Help: "Time the Event Socket connection has been up, in seconds."}, func() float64 {
		s.mu.Lock()
		cur := time.Duration(0)
		if s.conn != nil {
			cur = time.Since(m.since)
		}
		s.mu.Unlock()
		m.mu.Lock()
		defer m.mu.Unlock()
		return (m.total + cur).Seconds()
	})
	m.connects = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_esl_connects_total",
		Help: "Event Socket connections established (authenticated and subscribed)."})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_esl_events_total",
		Help: "FreeSWITCH events mapped and delivered, by tollguard event kind."}, []string{"kind"})
	m.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_esl_dropped_total",
		Help: "Frames or events discarded, by reason."}, []string{"reason"})
	m.commands = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_esl_commands_total",
		Help: "api commands sent, by result (ok, error)."}, []string{"result"})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.connected, m.seconds, m.connects, m.events, m.dropped, m.commands} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("freeswitch: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) drop(reason string) { m.dropped.WithLabelValues(reason).Inc() }

func (m *metrics) addConnected(d time.Duration) {
	m.mu.Lock()
	m.total += d
	m.mu.Unlock()
}
