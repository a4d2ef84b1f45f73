package forensics

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollguard/tollguard/internal/safetext"
	"github.com/tollguard/tollguard/internal/store"
)

// Mask replaces the phone numbers in r (accounts, destinations, numbers in
// the timeline) with store.MaskNumber's form, in place.
func (r *Report) Mask() {
	for i := range r.Accounts {
		r.Accounts[i].Account = store.MaskNumber(r.Accounts[i].Account)
	}
	for i := range r.Compromised {
		r.Compromised[i].Account = store.MaskNumber(r.Compromised[i].Account)
	}
	for i := range r.Destinations {
		d := &r.Destinations[i]
		d.Destination = store.MaskNumber(d.Destination)
		for j := range d.Accounts {
			d.Accounts[j] = store.MaskNumber(d.Accounts[j])
		}
	}
	for i := range r.Timeline {
		words := strings.Split(r.Timeline[i].What, " ")
		for j, w := range words {
			words[j] = store.MaskNumber(w)
		}
		r.Timeline[i].What = strings.Join(words, " ")
	}
}

// WriteText writes r as the plain-text report `tollguard investigate`
// prints. Text that came from the network is quoted (%q) or, in the
// timeline, escaped (safetext.Escape): no control or bidi character is
// written raw.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
	ew.printf("Incident report: %d events", r.Events)
	if r.Events > 0 {
		ew.printf(" from %s to %s UTC", ts(r.Since), ts(r.Until))
	}
	ew.printf("\n\n")

	ew.printf("LIKELY COMPROMISED ACCOUNTS (success from an attacking address after failures)\n")
	if len(r.Compromised) == 0 {
		ew.printf("  none\n")
	}
	tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
	for _, c := range r.Compromised {
		fmt.Fprintf(tw, "  %q\tfrom %s\t%s at %s\tafter %d failures\n", c.Account, c.IP, c.How, ts(c.At), c.Failures)
	}
	tw.Flush()

	ew.printf("\nTOP ATTACKING SOURCES\n")
	tw = tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  SOURCE\tFAILURES\tBLOCKED\tBANS\tACCOUNTS\tFIRST\tLAST\tUSER-AGENTS\n")
	for _, s := range r.Sources {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.IP, s.Failures, s.Verdicts, s.Bans, s.Accounts, ts(s.First), ts(s.Last), quoteList(s.UserAgents, 3))
	}
	tw.Flush()

	ew.printf("\nACCOUNTS TARGETED\n")
	tw = tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  ACCOUNT\tFAILURES\tSOURCES\n")
	for _, a := range r.Accounts {
		fmt.Fprintf(tw, "  %q\t%d\t%d\n", a.Account, a.Failures, a.Sources)
	}
	tw.Flush()

	ew.printf("\nEXPENSIVE DESTINATIONS CALLED\n")
	if len(r.Destinations) == 0 {
		ew.printf("  none\n")
	} else {
		tw = tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  DESTINATION\tPREFIX\tATTEMPTS\tANSWERED\tBILLSEC\tACCOUNTS\n")
		for _, d := range r.Destinations {
			fmt.Fprintf(tw, "  %q\t%s\t%d\t%d\t%s\t%s\n", d.Destination, d.Prefix, d.Attempts, d.Answered, d.Billsec, quoteList(d.Accounts, 5))
		}
		tw.Flush()
	}

	ew.printf("\nTIMELINE (UTC)\n")
	for _, e := range r.Timeline {
		ew.printf("  %s  %s\n", ts(e.Time), safetext.Escape(e.What))
	}
	return ew.err
}

// quoteList quotes up to n items and says how many more there are.
func quoteList(s []string, n int) string {
	var parts []string
	for i, v := range s {
		if i == n {
			parts = append(parts, fmt.Sprintf("+%d more", len(s)-n))
			break
		}
		if len(v) > 40 {
			v = v[:40]
		}
		parts = append(parts, fmt.Sprintf("%q", v))
	}
	return strings.Join(parts, ", ")
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
