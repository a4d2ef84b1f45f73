package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/freeswitch/audit"
)

// ErrAuditFindings is returned by `tollguard audit` when a finding reaches
// --fail-on; Main exits 1.
var ErrAuditFindings = errors.New("configuration audit failed")

// runAudit is `tollguard audit freeswitch DIR [--json] [--fail-on S] [-c FILE]`.
func runAudit(_ context.Context, e *Env, args []string) error {
	flags := flag.NewFlagSet("audit", flag.ContinueOnError)
	cfgPath := flags.String("c", "", "tollguard config `FILE`: password_policy, the guard's addresses (sip.upstream side, sip.listen, sip.advertise) and freeswitch.conf_dir; default /etc/tollguard/tollguard.yaml if it exists")
	asJSON := flags.Bool("json", false, "print the report as JSON")
	failOn := flags.String("fail-on", "high", "exit 1 when a finding reaches `SEVERITY`: info, low, medium, high or critical")
	pos, err := e.Parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || pos[0] != "freeswitch" {
		return usagef("the only audit target is freeswitch")
	}
	threshold, err := audit.ParseSeverity(*failOn)
	if err != nil {
		return usagef("fail-on: %v", err)
	}
	cfg, err := loadConfig(*cfgPath, e.DefaultConfig)
	if err != nil {
		return err
	}
	var dir string
	switch {
	case len(pos) == 2:
		dir = pos[1]
	case len(pos) == 1 && cfg.FreeSWITCH.ConfDir != "":
		dir = cfg.FreeSWITCH.ConfDir
	case len(pos) == 1:
		return usagef("want the FreeSWITCH configuration directory (or freeswitch.conf_dir in the config)")
	default:
		return usagef("want one directory, got %d arguments", len(pos)-1)
	}
	// The guard's addresses come from a config file only: built-in
	// defaults say nothing about where this guard runs.
	used, err := config.Find(*cfgPath, e.DefaultConfig)
	if err != nil {
		return err
	}
	fromFile := used != ""
	rep, err := AuditFreeSWITCH(dir, cfg, fromFile)
	if err != nil {
		return err
	}
	if *asJSON {
		err = writeJSON(e.Stdout, rep)
	} else {
		err = rep.WriteText(e.Stdout)
	}
	if err != nil {
		return err
	}
	if n := rep.AtLeast(threshold); n > 0 {
		return fmt.Errorf("%w: %d findings at or above %s", ErrAuditFindings, n, threshold)
	}
	return nil
}

// AuditFreeSWITCH audits the FreeSWITCH configuration in dir with the
// password policy of cfg and, when withGuard, the guard's addresses
// derived from cfg's sip section. serve --strict uses it too.
func AuditFreeSWITCH(dir string, cfg *config.Config, withGuard bool) (*audit.Report, error) {
	o := audit.Options{Policy: audit.Policy{Minimum: cfg.PasswordPolicy.Minimum, Strength: cfg.PasswordPolicy.Strength}}
	if withGuard {
		o.Guard = audit.GuardAddrs(cfg.SIP.Listen, cfg.SIP.Upstream, cfg.SIP.Advertise)
		// Every route's profile sees the guard from the address that
		// routes to its upstream.
		for _, r := range cfg.SIP.Routes {
			for _, a := range audit.GuardAddrs(r.Listen, r.Upstream, cfg.SIP.Advertise) {
				if !slices.Contains(o.Guard, a) {
					o.Guard = append(o.Guard, a)
				}
			}
		}
	}
	return audit.Run(dir, o)
}
