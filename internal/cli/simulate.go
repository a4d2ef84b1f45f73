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
	target := fs.String("target", "", "the guard or PBX under test, udp://127.0.0.1:5060 (loopback only)")
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
	if *target == "" {
		return usagef("--target is required, e.g. --target udp://127.0.0.1:5060")
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
	if *accounts != "" {
		for _, kv := range strings.Split(*accounts, ",") {
			u, p, ok := strings.Cut(kv, ":")
			if !ok || u == "" {
				return usagef("--accounts: %q is not user:password", kv)
			}
			sc.Accounts = append(sc.Accounts, sim.Account{User: u, Password: p})
		}
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
