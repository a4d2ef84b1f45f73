package audit

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// maxText caps one rendered string, in runes.
const maxText = 300

// WriteText prints the report for a terminal. Every string from the
// configuration is made safe first: control and format characters are
// escaped and long values are cut, so a crafted file cannot drive the
// operator's terminal.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "audited %s: %d files", Clean(r.Dir), len(r.Files))
	if len(r.Guard) > 0 {
		fmt.Fprintf(&b, ", guard at %s", Clean(strings.Join(r.Guard, ", ")))
	}
	b.WriteString("\n")
	if len(r.Findings) == 0 {
		b.WriteString("no findings\n")
	}
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "\n%-8s %s:%d  %s: %s  [%s]\n", strings.ToUpper(f.Severity.String()), Clean(f.File), f.Line, Clean(f.Subject), Clean(f.Message), f.Rule)
		fmt.Fprintf(&b, "         why: %s\n", Clean(f.Why))
		fmt.Fprintf(&b, "         fix: %s\n", Clean(f.Fix))
	}
	if len(r.Findings) > 0 {
		counts := make([]string, 0, 5)
		for s := Critical; s >= Info; s-- {
			n := 0
			for _, f := range r.Findings {
				if f.Severity == s {
					n++
				}
			}
			if n > 0 {
				counts = append(counts, fmt.Sprintf("%d %s", n, s))
			}
		}
		fmt.Fprintf(&b, "\n%d findings: %s\n", len(r.Findings), strings.Join(counts, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Clean renders s safe for a terminal: printable text passes, any other
// rune is escaped as Go would quote it, and the result is cut to maxText
// runes.
func Clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n++; n > maxText {
			b.WriteString("…")
			break
		}
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) && r != ' ' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
