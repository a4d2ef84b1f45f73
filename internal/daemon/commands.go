package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/cluster"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/freeswitch/audit"
)

// Commands returns the daemon commands main adds to the CLI.
func Commands() []cli.Command {
	return []cli.Command{
		{Name: "serve", Args: "[-c FILE] [--strict]", Summary: "run the guard (inline proxy, engine, store, admin API)", Run: runServe},
	}
}

func runServe(ctx context.Context, e *cli.Env, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("c", "", "config file (default "+config.DefaultPath+" if it exists, else built-in defaults)")
	strict := fs.Bool("strict", false, "audit freeswitch.conf_dir first and refuse to start on a finding of severity high or above")
	rest, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return &cli.UsageError{Msg: fmt.Sprintf("unexpected argument %q", rest[0])}
	}
	cfg, used, err := config.Resolve(*path, "")
	if err != nil {
		return err
	}
	if *strict {
		if err := strictAudit(e, cfg, used != ""); err != nil {
			return err
		}
	}
	log := NewLogger(e.Stderr, cfg.Log)
	redis.SetLogger(cluster.RedisLogger{L: log})
	if used == "" {
		log.Warn("no config file: running on built-in defaults", "hint", "tollguard serve -c examples/tollguard.yaml")
	} else {
		log.Info("config loaded", "file", used)
	}
	g, err := New(ctx, cfg, Options{Logger: log, ConfigPath: used})
	if err != nil {
		return err
	}
	return g.Run(ctx)
}

// strictAudit audits freeswitch.conf_dir, printing the report and
// returning an error when a finding is high or above, as mod_cti refuses
// to load an unsafe profile.
func strictAudit(e *cli.Env, cfg *config.Config, fromFile bool) error {
	if cfg.FreeSWITCH.ConfDir == "" {
		return errors.New("--strict needs freeswitch.conf_dir in the config")
	}
	rep, err := cli.AuditFreeSWITCH(cfg.FreeSWITCH.ConfDir, cfg, fromFile)
	if err != nil {
		return fmt.Errorf("auditing %s: %w", cfg.FreeSWITCH.ConfDir, err)
	}
	if n := rep.AtLeast(audit.High); n > 0 {
		if err := rep.WriteText(e.Stderr); err != nil {
			return err
		}
		return fmt.Errorf("refusing to start: %d findings of severity high or above in %s (tollguard audit freeswitch %s)", n, cfg.FreeSWITCH.ConfDir, cfg.FreeSWITCH.ConfDir)
	}
	return nil
}
