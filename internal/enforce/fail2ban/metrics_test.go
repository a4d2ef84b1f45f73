package fail2ban

import (
	dto "github.com/prometheus/client_model/go"
)

func testCounter(w *Writer) float64 {
	var m dto.Metric
	_ = w.dropped.Write(&m)
	return m.GetCounter().GetValue()
}
