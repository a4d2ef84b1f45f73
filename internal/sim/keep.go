package sim

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// DemoMix is the small mix `tollguard demo --keep` plays round after round:
// three phones, the typo and the moved phone, with a scanner, an
// enumerator, a password guesser, a sprayer and international probes. The
// lab's accounts must include 1001–1003.
func DemoMix() Mix {
	keep := []string{"phones", "typo", "moved_phone", "scan_options", "enumerate_register",
		"brute_force_fast", "password_spray", "unauthenticated_international"}
	plays := slices.DeleteFunc(Plays(), func(p Play) bool { return !slices.Contains(keep, p.Name) })
	return Mix{Name: "demo", Duration: 10 * time.Second, Size: 20, Plays: plays}
}

// Continuous plays m against lab round after round until ctx ends,
// writing one summary line per round to w. The attackers keep their
// addresses, so from the second round on they meet their bans at once.
func Continuous(ctx context.Context, lab Lab, m Mix, w io.Writer) error {
	for round := 1; ctx.Err() == nil; round++ {
		rep, err := RunMix(ctx, lab, m)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		calls := 0
		for _, name := range rep.Order {
			if o := rep.Scenarios[name]; !o.Attack {
				calls += o.CallsConnected
			}
		}
		reached := "?"
		if lab.Reached != nil {
			reached = fmt.Sprint(rep.Attack.ReachedPBX)
		}
		fmt.Fprintf(w, "round %d: attack requests %d sent, %s reached the PBX in all so far; legitimate: %d operations, %d failed, %d calls answered\n",
			round, rep.Attack.Sent, reached, rep.Legit.Sent, rep.Legit.Failed, calls)
	}
	return nil
}
