package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/store"
)

// ErrChainBroken is returned by `tollguard log verify` when the event log
// fails verification; Main exits 1.
var ErrChainBroken = errors.New("event log failed verification")

// runLog is `tollguard log verify [-c FILE] [--json]`. It opens the store
// read-only (it may run beside the daemon), checks the hash chain and the
// signed checkpoints, and names the first broken record.
func runLog(ctx context.Context, e *Env, args []string) error {
	flags := flag.NewFlagSet("log", flag.ContinueOnError)
	cfgPath := flags.String("c", "", "the daemon's config `FILE` (store, data_dir); default /etc/tollguard/tollguard.yaml if it exists")
	asJSON := flags.Bool("json", false, "print the report as JSON")
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
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.Verify(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := writeJSON(e.Stdout, rep); err != nil {
			return err
		}
	} else if rep.OK {
		fmt.Fprintf(e.Stdout, "ok: %d records (seq %d to %d), %d signed checkpoints\n", rep.Records, rep.FirstSeq, rep.LastSeq, rep.Checkpoints)
	} else {
		fmt.Fprintf(e.Stdout, "BROKEN at record %d: %s\n(%d records before it verified)\n", rep.BrokenSeq, rep.Reason, rep.Records)
	}
	if !rep.OK {
		return fmt.Errorf("%w at record %d", ErrChainBroken, rep.BrokenSeq)
	}
	return nil
}

// loadConfig loads path, or the default config when it exists, or the
// built-in defaults (config.Resolve).
func loadConfig(path, def string) (*config.Config, error) {
	c, _, err := config.Resolve(path, def)
	return c, err
}
