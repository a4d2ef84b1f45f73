package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

// runSimulate drives phones and attackers at a target and prints what each
// of them saw. The simulated parties send from 127.0.0.x addresses, so the
// target must be on loopback: this is a test tool, never an attack tool.
func runSimulate(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	target := fs.String("target", "", "the guard or PBX under test, udp://127.0.0.1:5060 (loopback only; with --scenario: optional)")
	scenario := fs.String("scenario", "", "run a mix of every scenario instead: standard (about 2 min 10 s) or short (about 20 s); without --target against an embedded guard and demo PBX")
	asJSON := fs.Bool("json", false, "with --scenario: print the report as JSON")
	unprotected := fs.Bool("unprotected", false, "with --scenario and no --target: leave the guard out (the baseline)")
	domain := fs.String("domain", "", "SIP domain of the accounts (default: the target address)")
	accounts := fs.String("accounts", "", "user:password,... the phones use (default: the demo PBX's accounts)")
	phones := fs.Int("phones", 2, "phones that register and call")
	typos := fs.Int("typos", 0, "phones with a mistyped password")
	attackers := fs.String("attackers", "scanner,cracker", "comma list of scanner, cracker, enumerator, flooder")
	dur := fs.Duration("duration", 20*time.Second, "how long the run lasts (at most 10m)")
	number := fs.String("number", "", "number the phones call (default 00441632960123)")
	rest, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *scenario != "" {
		if *target != "" {
			if t, err := sim.ParseTarget(*target); err == nil && !t.Addr().IsLoopback() {
				return usagef("--target %s is not on loopback: simulated parties send from 127.0.0.x", t)
			}
		}
		accs, err := parseAccounts(*accounts)
		if err != nil {
			return err
		}
		return runMix(ctx, e, *scenario, *target, *domain, accs, *unprotected, *asJSON)
	}
	if *target == "" {
		return usagef("--target is required, e.g. --target udp://127.0.0.1:5060 (or --scenario standard)")
	}
	t, err := sim.ParseTarget(*target)
	if err != nil {
		return usagef("--target: %v", err)
	}
	if !t.Addr().IsLoopback() {
		return usagef("--target %s is not on loopback: simulated parties send from 127.0.0.x", t)
	}
	if *dur <= 0 || *dur > 10*time.Minute {
		return usagef("--duration must be between 1s and 10m")
	}
	sc := sim.Scenario{Target: *target, Domain: *domain, Phones: *phones, TypoPhones: *typos,
		Duration: *dur, Number: *number}
	if *attackers != "" {
		sc.Attackers = strings.Split(*attackers, ",")
	}
	if sc.Accounts, err = parseAccounts(*accounts); err != nil {
		return err
	}
	r, err := sim.Run(ctx, sc)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	fmt.Fprint(e.Stdout, r.String())
	if len(r.Errors) > 0 {
		return errors.New("simulate: some parties reported errors (see above)")
	}
	return nil
}

// parseAccounts parses --accounts: user:password,...
func parseAccounts(s string) ([]sim.Account, error) {
	if s == "" {
		return nil, nil
	}
	var out []sim.Account
	for _, kv := range strings.Split(s, ",") {
		u, p, ok := strings.Cut(kv, ":")
		if !ok || u == "" {
			return nil, usagef("--accounts: %q is not user:password", kv)
		}
		out = append(out, sim.Account{User: u, Password: p})
	}
	return out, nil
}
