package alert

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per channel, indexed like Notifier.chans.
type metrics struct {
	sent, failed, dropped, suppressed []prometheus.Counter
}

// newMetrics registers the alert metrics on reg (nil: unregistered), with
// every channel's series present from the start.
func newMetrics(reg *prometheus.Registry, channels []string) (*metrics, error) {
	vec := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"channel"})
	}
	sent := vec("tollguard_alert_sent_total", "Alert messages delivered, by channel.")
	failed := vec("tollguard_alert_failed_total", "Alert messages not delivered after their retries, by channel.")
	dropped := vec("tollguard_alert_dropped_total", "Alerts lost because a channel's queue or outbox was full, by channel.")
	suppressed := vec("tollguard_alert_suppressed_total", "Alerts folded into a summary or deduplicated, by channel.")
	if reg != nil {
		for _, c := range []prometheus.Collector{sent, failed, dropped, suppressed} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("alert: registering metrics: %w", err)
			}
		}
	}
	m := &metrics{}
	for _, ch := range channels {
		m.sent = append(m.sent, sent.WithLabelValues(ch))
		m.failed = append(m.failed, failed.WithLabelValues(ch))
		m.dropped = append(m.dropped, dropped.WithLabelValues(ch))
		m.suppressed = append(m.suppressed, suppressed.WithLabelValues(ch))
	}
	return m, nil
}

// UnregisterMetrics removes the alert metrics a Notifier registered on reg,
// so a Notifier built for a reloaded config can register its own.
func UnregisterMetrics(reg *prometheus.Registry) {
	for _, name := range []string{"tollguard_alert_sent_total", "tollguard_alert_failed_total",
		"tollguard_alert_dropped_total", "tollguard_alert_suppressed_total"} {
		// Unregister matches by name and labels; the help is not compared.
		reg.Unregister(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: name}, []string{"channel"}))
	}
}
