package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/tollguard/tollguard/internal/safetext"
)

// writeJSON prints v as indented JSON, with the control and bidi
// characters encoding/json leaves raw escaped (safetext.JSON): the values
// decode unchanged, and nothing drives the terminal.
func writeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	if _, err := w.Write(safetext.JSON(b.Bytes())); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// Table prints aligned columns. Cells are made safe for a terminal: text
// that came from the network (accounts, reasons, user agents) could carry
// escape sequences, so any cell with a non-printable character is shown
// quoted, and long cells are cut.
type Table struct {
	tw *tabwriter.Writer
}

// maxCell caps a table cell, in runes.
const maxCell = 48

// newTable starts a table on w with the given column headers.
func newTable(w io.Writer, headers ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.Row(headers...)
	return t
}

// Row adds one row.
func (t *Table) Row(cells ...string) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, safeCell(c))
	}
	fmt.Fprint(t.tw, "\n")
}

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }

// safeCell renders s for one table cell.
func safeCell(s string) string {
	if s == "" {
		return "-"
	}
	if !printable(s) {
		s = strconv.QuoteToASCII(s)
	}
	return capString(s, maxCell)
}

// printable reports whether s is valid UTF-8 without a rune
// safetext.Unsafe refuses: no control or bidi character, and no tab (which
// would break the columns).
func printable(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, safetext.Unsafe) < 0
}

// capString cuts s to n runes, marking the cut.
func capString(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// timeFormat is how tables show instants.
const timeFormat = "2006-01-02 15:04:05"

// fmtTime renders t in loc; the zero time is "-".
func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(loc).Format(timeFormat)
}

// fmtLeft renders the time left until until, seen at now: "2m30s", "3d4h",
// "never" for the zero time, "expired" when past.
func fmtLeft(until, now time.Time) string {
	if until.IsZero() {
		return "never"
	}
	d := until.Sub(now)
	if d <= 0 {
		return "expired"
	}
	return fmtDuration(d)
}

// fmtDuration renders d in at most two units, rounded down to the second:
// "45s", "2m30s", "5h0m", "3d4h".
func fmtDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
