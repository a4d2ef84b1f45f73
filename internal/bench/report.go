package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is the outcome of a benchmark run.
type Report struct {
	Started time.Time
	Elapsed time.Duration
	// CPUs is the number of CPUs the driver could use when it started.
	CPUs int
	Rows []Row
	// Notes are free-text lines printed under the table (histograms,
	// warnings such as a load generator that fell behind).
	Notes []string
}

// Row is one measured figure.
type Row struct {
	Scenario string
	// Setting describes the conditions: rate, layout, method.
	Setting string
	Metric  string
	Value   string
	// Target is the project's target for this figure, empty when none.
	Target string
	// Met is "yes", "no" or empty when there is no target.
	Met string
}

func (r *Report) add(row Row) { r.Rows = append(r.Rows, row) }

func (r *Report) note(format string, a ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, a...)) }

// Failed reports whether any row missed its target.
func (r *Report) Failed() bool {
	for _, row := range r.Rows {
		if row.Met == "no" {
			return true
		}
	}
	return false
}

// WriteMarkdown prints the report as a Markdown table followed by the notes.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Run started %s, %d CPUs visible, took %v.\n\n", r.Started.Format(time.RFC3339), r.CPUs, r.Elapsed.Round(time.Second))
	b.WriteString("| scenario | setting | metric | value | target | met |\n|---|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", row.Scenario, row.Setting, row.Metric, row.Value, row.Target, row.Met)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n```\n")
		for _, n := range r.Notes {
			b.WriteString(n)
			b.WriteByte('\n')
		}
		b.WriteString("```\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// us formats a duration in microseconds (with one decimal below 10 µs),
// or in milliseconds from 10 ms up.
func us(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Microsecond && d > -10*time.Microsecond:
		return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
}

// met renders a boolean target check.
func met(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// mb formats bytes in MB (10^6 bytes).
func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

// perSec formats a rate.
func perSec(n float64, unit string) string {
	return fmt.Sprintf("%s %s/s", thousands(int64(n+0.5)), unit)
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
