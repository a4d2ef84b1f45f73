package sim_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/sim"
)

func TestRunScenarioAgainstPBX(t *testing.T) {
	p := startPBX(t)
	rep, err := sim.Run(testCtx(t), sim.Scenario{
		Target: p.Target(), Domain: "demo.test",
		Phones: 2, TypoPhones: 1, Attackers: []string{"scanner", "cracker"},
		Duration: 2 * time.Second, CallEvery: 500 * time.Millisecond, Hold: 50 * time.Millisecond,
		SourceBase: source(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Phones) != 3 || len(rep.Attacks) != 2 {
		t.Fatalf("report has %d phones and %d attacks, want 3 and 2:\n%s", len(rep.Phones), len(rep.Attacks), rep)
	}
	for i, ph := range rep.Phones[:2] {
		if ph.Registered < 1 || ph.CallsAnswered < 1 {
			t.Errorf("phone %d: %s, want registered and at least one answered call", i, ph)
		}
	}
	if typo := rep.Phones[2]; typo.Registered != 0 || typo.RegisterCodes[403] < 1 {
		t.Errorf("typo phone: %s, want only 403s", typo)
	}
	for _, a := range rep.Attacks {
		if a.Sent == 0 || a.Banned {
			t.Errorf("attack %s: want traffic and no ban (no guard in front)", a)
		}
	}
	if st := p.Stats(); st.CallsAnswered < 2 || st.AuthFailures < 2 {
		t.Errorf("pbx stats %+v, want calls answered and the typo/cracker failures", st)
	}
	if s := rep.String(); !strings.Contains(s, "scanner") || !strings.Contains(s, "phone 1001") {
		t.Errorf("report text lacks parties:\n%s", s)
	}
}

func TestRunRejectsUnknownAttacker(t *testing.T) {
	_, err := sim.Run(context.Background(), sim.Scenario{Target: "udp://127.0.0.1:5060", Attackers: []string{"nuke"}})
	if err == nil || !strings.Contains(err.Error(), "nuke") {
		t.Errorf("err = %v, want unknown attacker", err)
	}
}
