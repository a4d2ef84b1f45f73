package cli

import (
	"context"
	"flag"
	"fmt"
	"net/url"

	"github.com/tollguard/tollguard/internal/api"
)

// runInvestigate is `tollguard investigate [--since D] [--node NODE]
// [--unmask] [--json]`: every node's events unless --node.
func runInvestigate(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("investigate", flag.ContinueOnError)
	cf := addClientFlags(fs)
	since := fs.String("since", "24h", "look back `D` (24h, 7d) or from an RFC 3339 time")
	node := fs.String("node", "", "only events recorded by this guard `NODE` (cluster.node); default every node's")
	unmask := fs.Bool("unmask", false, "show phone numbers in full (recorded as an admin action)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := e.ParseNoArgs(fs, args); err != nil {
		return err
	}
	q := url.Values{"since": {*since}}
	if *node != "" {
		q.Set("node", *node)
	}
	if *unmask {
		q.Set("unmask", "true")
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	var rep api.InvestigateReply
	if err := c.Do(ctx, "GET", "/api/v1/investigate", q, nil, &rep); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.Stdout, rep)
	}
	if rep.Truncated {
		fmt.Fprintln(e.Stderr, "the window holds more events than one report reads: the report covers the newest ones; narrow --since")
	}
	return rep.Report.WriteText(e.Stdout)
}
