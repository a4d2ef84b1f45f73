package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/store"
)

// ErrChainBroken is returned by `tollguard log verify` when the event log
// fails verification; Main exits 1.
var ErrChainBroken = errors.New("event log failed verification")

// runLog is `tollguard log verify [-c FILE] [--node NAME] [--json]`. It
// opens the store read-only (it may run beside the daemons), checks the
// hash chain and the signed checkpoints of every node's chain (or of
// --node's), and names the first broken record of each broken one.
func runLog(ctx context.Context, e *Env, args []string) error {
	flags := flag.NewFlagSet("log", flag.ContinueOnError)
	cfgPath := flags.String("c", "", "the daemon's config `FILE` (store, data_dir); default /etc/tollguard/tollguard.yaml if it exists")
	asJSON := flags.Bool("json", false, "print the report as JSON")
	var nodes []string
	flags.Func("node", "check only this `NODE`'s chain (repeatable); default every chain in the store", func(v string) error {
		if err := store.CheckNode(v); err != nil {
			return err
		}
		nodes = append(nodes, v)
		return nil
	})
	pos, err := e.Parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "verify" {
		return usagef("the only log subcommand is verify")
	}
	cfg, err := loadConfig(*cfgPath, e.DefaultConfig)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{ReadOnly: true, Node: cfg.StoreNode()})
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.Verify(ctx, nodes...)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(e.Stdout, rep); err != nil {
			return err
		}
	} else {
		for _, c := range rep.Chains {
			printChain(e, c)
		}
	}
	if !rep.OK {
		var broken []string
		for _, c := range rep.Chains {
			if !c.OK {
				broken = append(broken, fmt.Sprintf("%sat record %d", strings.Replace(nodeLabel(c.Node, " "), "node", "for node", 1), c.BrokenSeq))
			}
		}
		return fmt.Errorf("%w %s", ErrChainBroken, strings.Join(broken, ", "))
	}
	return nil
}

// nodeLabel is "node NAME"+sep, or "" for the chain of a guard alone (its
// report reads as it always did).
func nodeLabel(node, sep string) string {
	if node == "" {
		return ""
	}
	return "node " + node + sep
}

// printChain writes one chain's report line (two when broken).
func printChain(e *Env, c store.ChainReport) {
	key := ""
	switch c.Key {
	case store.KeyPinned:
		key = fmt.Sprintf(", key %s (pinned)", c.PublicKey)
	case store.KeyLocal:
		key = fmt.Sprintf(", key %s (this host's)", c.PublicKey)
	case store.KeyDatabase:
		key = fmt.Sprintf(", key %s (as the node stored it, not pinned)", c.PublicKey)
	}
	if c.OK {
		span := ""
		if c.Records > 0 {
			span = fmt.Sprintf(", %s to %s", fmtTime(c.FirstTime, e.Loc), fmtTime(c.LastTime, e.Loc))
		}
		fmt.Fprintf(e.Stdout, "%sok: %d records (seq %d to %d%s), %d signed checkpoints%s\n",
			nodeLabel(c.Node, ": "), c.Records, c.FirstSeq, c.LastSeq, span, c.Checkpoints, key)
		return
	}
	fmt.Fprintf(e.Stdout, "%sBROKEN at record %d: %s\n(%d records before it verified%s)\n", nodeLabel(c.Node, ": "), c.BrokenSeq, c.Reason, c.Records, key)
}

// loadConfig loads path, or the default config when it exists, or the
// built-in defaults (config.Resolve).
func loadConfig(path, def string) (*config.Config, error) {
	c, _, err := config.Resolve(path, def)
	return c, err
}
