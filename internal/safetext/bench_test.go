package safetext

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkJSONPlain is the common case: an events answer with nothing to
// escape is returned as it is.
func BenchmarkJSONPlain(b *testing.B) {
	rec := map[string]string{"account": "1001", "user_agent": "Yealink SIP-T46S 66.86.0.15", "call_id": "a84b4c76e66710@pc33"}
	recs := make([]map[string]string, 1000)
	for i := range recs {
		recs[i] = rec
	}
	buf, _ := json.MarshalIndent(recs, "", "  ")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		JSON(buf)
	}
}

// BenchmarkJSONHostile escapes a bidi override in every record.
func BenchmarkJSONHostile(b *testing.B) {
	rec := map[string]string{"account": "1001\u202e", "user_agent": "张三 " + strings.Repeat("x", 40), "call_id": "a84b4c76e66710@pc33"}
	recs := make([]map[string]string, 1000)
	for i := range recs {
		recs[i] = rec
	}
	buf, _ := json.MarshalIndent(recs, "", "  ")
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		JSON(buf)
	}
}

func BenchmarkCSVCell(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		CSVCell("friendly-scanner")
		CSVCell("=cmd|' /C calc'!A0\u202e")
	}
}
