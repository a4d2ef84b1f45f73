package intel

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	fetches    *prometheus.CounterVec
	entries    *prometheus.GaugeVec
	rejected   *prometheus.CounterVec
	suspicious *prometheus.CounterVec
}

func (m *metrics) register(reg prometheus.Registerer) error {
	m.fetches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_intel_fetches_total",
		Help: "Feed pulls, by feed and result (ok, not_modified, suspicious, oversize, error)."}, []string{"feed", "result"})
	m.entries = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tollguard_intel_entries",
		Help: "Addresses and networks a feed currently bans."}, []string{"feed"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_intel_rejected_total",
		Help: "Feed entries not applied, by feed and reason (malformed, refused, unsupported)."}, []string{"feed", "reason"})
	m.suspicious = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_intel_suspicious_total",
		Help: "Pulls whose list shrank by 90% or more at once and was not believed."}, []string{"feed"})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.fetches, m.entries, m.rejected, m.suspicious} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("intel: registering metrics: %w", err)
		}
	}
	return nil
}
