package cli

import (
	"regexp"
	"testing"

	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

// TestSimulate runs `tollguard simulate` against the demo PBX (no guard in
// between, so the scanner is answered and nobody is banned) and checks the
// report names every party with what it saw.
func TestSimulate(t *testing.T) {
	p, err := pbx.New(pbx.Options{Accounts: sim.AccountMap(sim.DemoAccounts())})
	if err != nil {
		t.Fatal(err)
	}
	go p.Run(t.Context())
	<-p.Ready()
	e, out, errb := testEnv(t)
	code := run(t.Context(), e, []string{"simulate", "--target", p.Target(), "--domain", p.Realm(),
		"--phones", "1", "--attackers", "scanner", "--duration", "3s"}, nil)
	t.Log(out.String())
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, re := range []string{`phone 1001 .*registered [1-9]`, `scanner +from 127\.`} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("report lacks %s", re)
		}
	}
}

func TestSimulateRefusesRemoteTarget(t *testing.T) {
	e, _, errb := testEnv(t)
	if code := run(t.Context(), e, []string{"simulate", "--target", "udp://192.0.2.1:5060"}, nil); code != ExitUsage {
		t.Fatalf("exit %d, want %d", code, ExitUsage)
	}
	if !regexp.MustCompile(`not on loopback`).MatchString(errb.String()) {
		t.Errorf("stderr %q", errb.String())
	}
}

func TestSimulateScenarioUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"simulate", "--scenario", "bogus"}, `unknown mix "bogus"`},
		{[]string{"simulate", "--scenario", "standard"}, `needs the embedded guard`}, // LabStarter is nil in tests
		{[]string{"simulate", "--scenario", "short", "--target", "udp://192.0.2.1:5060"}, `not on loopback`},
	} {
		e, _, errb := testEnv(t)
		if code := run(t.Context(), e, tc.args, nil); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, code, ExitUsage)
		}
		if !regexp.MustCompile(tc.want).MatchString(errb.String()) {
			t.Errorf("%v: stderr %q, want %s", tc.args, errb.String(), tc.want)
		}
	}
}
