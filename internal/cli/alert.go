package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/tollguard/tollguard/internal/enforce/alert"
)

// runAlert is `tollguard alert test CHANNEL [-c FILE]`: it reads the
// channel from the config and sends it one test message directly, without
// the daemon, so an operator can check a robot token or SMTP login.
func runAlert(ctx context.Context, e *Env, args []string) error {
	flags := flag.NewFlagSet("alert", flag.ContinueOnError)
	cfgPath := flags.String("c", "", "the config `FILE` holding alerts.channels; default /etc/tollguard/tollguard.yaml if it exists")
	pos, err := e.Parse(flags, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || pos[0] != "test" {
		return usagef("want: alert test CHANNEL")
	}
	cfg, err := loadConfig(*cfgPath, e.DefaultConfig)
	if err != nil {
		return err
	}
	name := pos[1]
	cc := cfg.Alerts.Channel(name)
	if cc == nil {
		var names []string
		for _, c := range cfg.Alerts.Channels {
			names = append(names, c.Name)
		}
		return fmt.Errorf("no alert channel named %q (configured: %v)", capString(name, 40), names)
	}
	if err := alert.SendTest(ctx, cfg.Alerts, name, alert.Options{Now: e.Now, Location: e.Loc}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "sent a test alert to %s (%s)\n", cc.Name, cc.Type)
	return nil
}
