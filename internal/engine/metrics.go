package engine

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	failures  prometheus.Counter
	decisions map[string]prometheus.Counter // by rule family
	verdicts  map[[2]string]prometheus.Counter
}

// The engine's own rules; the detectors' rules come from the list
// (detectors.go), so a new detector needs no change here.
var (
	engineRules    = []string{RuleFlood}
	engineVerdicts = [][2]string{{"drop", RuleDeny}, {"drop", RuleBan}, {"drop", RuleFlood}, {"reject", RuleBan},
		{"drop", RuleGreylist}, {"pass", RuleGreylist}}
)

// newMetrics registers the engine's metrics on reg (nil: unregistered),
// with a label for each of the detectors' rules.
func newMetrics(reg *prometheus.Registry, e *Engine, detectors []string) *metrics {
	decisionRules := append(append([]string(nil), engineRules...), detectors...)
	verdictKinds := append([][2]string(nil), engineVerdicts...)
	for _, d := range detectors {
		verdictKinds = append(verdictKinds, [2]string{"drop", d}, [2]string{"reject", d}, [2]string{"pass", d})
	}
	m := &metrics{
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_engine_auth_failures_total",
			Help: "Authentication failures counted by the engine."}),
		decisions: map[string]prometheus.Counter{},
		verdicts:  map[[2]string]prometheus.Counter{},
	}
	dv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_engine_decisions_total",
		Help: "Bans decided by the engine, by rule."}, []string{"rule"})
	for _, r := range decisionRules {
		m.decisions[r] = dv.WithLabelValues(r)
	}
	vv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_engine_verdicts_total",
		Help: "Requests the engine refused (or passed and flagged), by action and rule."}, []string{"action", "rule"})
	for _, k := range verdictKinds {
		m.verdicts[k] = vv.WithLabelValues(k[0], k[1])
	}
	ft := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollguard_engine_flood_table_bytes",
		Help: "Memory held by the flood table."}, func() float64 { return float64(e.FloodTableBytes()) })
	gt := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tollguard_engine_greylist_table_bytes",
		Help: "Memory held by the greylist table (0 when greylisting is off)."}, func() float64 { return float64(e.GreylistTableBytes()) })
	if reg != nil {
		reg.MustRegister(m.failures, dv, vv, ft, gt)
	}
	return m
}

func (m *metrics) decision(rule string) {
	if i := strings.IndexByte(rule, '['); i > 0 {
		rule = rule[:i]
	}
	if c, ok := m.decisions[rule]; ok {
		c.Inc()
	}
}

// count records v and returns it.
func (e *Engine) count(v Verdict) Verdict {
	if c, ok := e.m.verdicts[[2]string{v.Action.String(), v.Rule}]; ok {
		c.Inc()
	}
	return v
}
