package store

import "github.com/prometheus/client_golang/prometheus"

// metrics are the store's Prometheus metrics.
type metrics struct {
	written     prometheus.Counter
	dropped     prometheus.Counter
	errors      prometheus.Counter
	checkpoints prometheus.Counter
	purged      prometheus.Counter
	batch       prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry, queueLen func() float64) *metrics {
	m := &metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollguard_store_events_written_total", Help: "Events committed to the store.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollguard_store_events_dropped_total", Help: "Events lost: queue full, store closed, or a failed write.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollguard_store_write_errors_total", Help: "Failed batch writes and unencodable events.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollguard_store_checkpoints_total", Help: "Signed checkpoints written.",
		}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tollguard_store_purged_events_total", Help: "Events deleted by retention.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tollguard_store_batch_duration_seconds", Help: "Time to commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.written, m.dropped, m.errors, m.checkpoints, m.purged, m.batch,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tollguard_store_queue_events", Help: "Events waiting for the writer.",
			}, queueLen))
	}
	return m
}
