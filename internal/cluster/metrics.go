package cluster

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	connected   prometheus.Gauge
	pending     prometheus.Gauge
	published   prometheus.Counter
	received    prometheus.Counter
	rejected    *prometheus.CounterVec
	dropped     prometheus.Counter
	disconnects prometheus.Counter
}

func (m *metrics) register(reg prometheus.Registerer) error {
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollguard_cluster_connected",
		Help: "1 while this node shares bans through Redis, 0 while it bans alone."})
	m.pending = prometheus.NewGauge(prometheus.GaugeOpts{Name: "tollguard_cluster_pending_decisions",
		Help: "Decisions made here and not yet written to Redis."})
	m.published = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_cluster_published_total",
		Help: "Decisions written to Redis and published to the other nodes."})
	m.received = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_cluster_received_total",
		Help: "Decisions of other nodes applied here."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_cluster_rejected_total",
		Help: "Entries read from Redis and not applied, by reason (malformed, refused, expired, over_cap)."}, []string{"reason"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_cluster_dropped_total",
		Help: "Decisions not shared because the pending map was full."})
	m.disconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_cluster_disconnects_total",
		Help: "Times the link to Redis was lost."})
	for _, r := range []string{"malformed", "refused", "expired", "over_cap"} {
		m.rejected.WithLabelValues(r)
	}
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.pending, m.published, m.received, m.rejected, m.dropped, m.disconnects} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("cluster: registering metrics: %w", err)
		}
	}
	return nil
}
