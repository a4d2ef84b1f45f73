package cli

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/tollguard/tollguard/internal/api"
)

// runEvents is `tollguard events [filters] [--json|--csv] [--unmask]`.
func runEvents(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	cf := addClientFlags(fs)
	q := url.Values{}
	for _, f := range []struct{ name, param, usage string }{
		{"node", "node", "only events recorded by this guard `NODE` (cluster.node); default every node's"},
		{"ip", "ip", "only events from (or bans of) this `IP`"},
		{"account", "account", "only events of this `ACCOUNT`"},
		{"call-id", "call_id", "only events of this `CALL-ID`"},
		{"kind", "kind", "only these `KINDS`, comma separated: auth_failure,register,call_attempt,call_answered,call_ended,ban,unban,verdict,admin,request,response"},
		{"since", "since", "events from `D` ago (24h, 7d) or an RFC 3339 time"},
		{"until", "until", "events before `D` ago or an RFC 3339 time"},
	} {
		fs.Func(f.name, f.usage, func(v string) error { q.Set(f.param, v); return nil })
	}
	limit := fs.Int("limit", 100, "show at most `N` events, newest first")
	unmask := fs.Bool("unmask", false, "show phone numbers in full (recorded as an admin action)")
	asJSON := fs.Bool("json", false, "print JSON")
	asCSV := fs.Bool("csv", false, "print CSV")
	if err := e.ParseNoArgs(fs, args); err != nil {
		return err
	}
	if *asJSON && *asCSV {
		return usagef("--json and --csv exclude each other")
	}
	if *limit < 1 {
		return usagef("--limit must be positive")
	}
	q.Set("limit", strconv.Itoa(*limit))
	if *unmask {
		q.Set("unmask", "true")
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	var rep api.EventsReply
	if err := c.Do(ctx, "GET", "/api/v1/events", q, nil, &rep); err != nil {
		return err
	}
	switch {
	case *asJSON:
		return writeJSON(e.Stdout, rep)
	case *asCSV:
		return writeEventsCSV(e, rep.Records)
	}
	// The NODE column appears when a record names one (a shared store).
	nodes := slices.ContainsFunc(rep.Records, func(r api.EventRecord) bool { return r.Node != "" })
	cols := []string{"TIME", "KIND", "SOURCE", "ACCOUNT", "FROM", "TO", "CODE", "RULE", "USER-AGENT", "DETAIL"}
	if nodes {
		cols = append([]string{"NODE"}, cols...)
	}
	t := newTable(e.Stdout, cols...)
	for _, r := range rep.Records {
		row := []string{fmtTime(r.Time, e.Loc), r.Kind, r.Source, r.Account, r.From, r.To, codeText(r.Code), r.Rule, r.UserAgent, r.Summary}
		if nodes {
			row = append([]string{r.Node}, row...)
		}
		t.Row(row...)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(rep.Records) == *limit {
		fmt.Fprintf(e.Stderr, "showing the newest %d events; use --limit or narrow the filters for more\n", *limit)
	}
	return nil
}

func codeText(c int) string {
	if c == 0 {
		return ""
	}
	return strconv.Itoa(c)
}

// writeEventsCSV writes records as CSV, formula-looking cells defused
// (api.WriteEventsCSV).
func writeEventsCSV(e *Env, recs []api.EventRecord) error {
	return api.WriteEventsCSV(e.Stdout, recs)
}
