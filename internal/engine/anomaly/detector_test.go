package anomaly

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/engine/detector"
	"github.com/tollguard/tollguard/internal/event"
)

// trainedState is 20 office accounts' three weeks, learnt and fitted.
func trainedState(t *testing.T) *State {
	t.Helper()
	b := newBaseline(t, Config{Window: 14 * 24 * time.Hour})
	tr := NewTrainer(b)
	for i := range 20 {
		for _, ev := range officeEvents(fmt.Sprint(1000 + i)) {
			tr.Observe(ev)
		}
	}
	m, err := tr.Fit()
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewState(Config{Country: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	st.Replace(b, m)
	return st
}

func compileT(t *testing.T, st *State, mode string, warn, block float64) *Detector {
	t.Helper()
	d, err := Compile(Config{Mode: mode, Warn: warn, Block: block}, st)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// try runs a call attempt through d's request hook.
func try(d *Detector, ev *event.CallAttempt) detector.Verdict {
	in := &detector.Input{Kind: event.KindCallAttempt, Now: ev.Time, Src: ev.Source.Addr(), SIP: &ev.SIP,
		Account: ev.Account, Destination: ev.Destination, Event: ev}
	var out detector.Out
	d.Request(nil, in, &out)
	return out.V
}

// nightBurst is five calls to a satellite number at 03:00 from account.
func nightBurst(account string) []*event.CallAttempt {
	var out []*event.CallAttempt
	at := day4.Add(3 * time.Hour)
	for i := range 5 {
		out = append(out, call(at.Add(time.Duration(i)*time.Minute), account, fmt.Sprintf("+88216000%04d", i), "185.220.100.7:5060", "sipcli/v1.8"))
	}
	return out
}

func TestDetectorVerdicts(t *testing.T) {
	normal := call(day4.Add(10*time.Hour+10*time.Minute), "1003", "+442079460003", homeSrc, homeUA)
	tests := []struct {
		name         string
		mode         string
		warn, block  float64
		calls        []*event.CallAttempt
		action       detector.Action
		rule, reason string
	}{
		{"shadow never blocks a night burst to +882", ModeShadow, DefaultWarn, DefaultBlock, nightBurst("1001"), detector.Pass, Name, "+882"},
		{"enforce rejects at block", ModeEnforce, DefaultWarn, DefaultBlock, nightBurst("1001"), detector.Reject, Name, "(blocked): "},
		{"enforce between warn and block flags", ModeEnforce, DefaultWarn, 1, nightBurst("1001"), detector.Pass, Name, "+882"},
		{"a usual call is neither flagged nor blocked", ModeEnforce, DefaultWarn, DefaultBlock, []*event.CallAttempt{normal}, detector.Pass, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := compileT(t, trainedState(t), tc.mode, tc.warn, tc.block)
			var v detector.Verdict // the first flag or refusal
			for _, c := range tc.calls {
				if v = try(d, c); v.Rule != "" {
					break
				}
			}
			if v.Action != tc.action || v.Rule != tc.rule {
				t.Fatalf("verdict %+v, want %v with rule %q", v, tc.action, tc.rule)
			}
			if tc.action == detector.Reject && v.Code != 403 {
				t.Errorf("code %d, want 403", v.Code)
			}
			if tc.rule == "" {
				return
			}
			if !strings.HasPrefix(v.Reason, "score 0.") || !strings.Contains(v.Reason, tc.reason) || !strings.Contains(v.Reason, "usually") {
				t.Errorf("reason %q: want the score, %q and the words", v.Reason, tc.reason)
			}
			if len(v.Reason) > maxReasonLen+len("…") {
				t.Errorf("reason is %d bytes, cap %d", len(v.Reason), maxReasonLen)
			}
		})
	}
}

// Without a model the detector learns and never flags; other requests are
// not looked at; registrations and ended calls teach the baseline.
func TestDetectorObserves(t *testing.T) {
	st, err := NewState(Config{Country: "GB"})
	if err != nil {
		t.Fatal(err)
	}
	d := compileT(t, st, ModeEnforce, DefaultWarn, DefaultBlock)
	for _, c := range nightBurst("2001") {
		if v := try(d, c); v.Rule != "" {
			t.Fatalf("no model yet, got %+v", v)
		}
	}
	if st.b.Accounts() != 1 {
		t.Fatalf("accounts %d after attempts without a model, want 1 (learnt)", st.b.Accounts())
	}
	req := &event.Request{Meta: event.Meta{Time: day4}, SIP: event.SIP{Method: "OPTIONS", FromUser: "2002"}}
	var out detector.Out
	d.Request(nil, &detector.Input{Kind: event.KindRequest, Account: "2002", Event: req}, &out)
	if out.V.Rule != "" || st.b.Accounts() != 1 {
		t.Fatalf("a request other than a call attempt was looked at: %+v, %d accounts", out.V, st.b.Accounts())
	}
	reg := &event.Register{Meta: event.Meta{Time: day4, Source: netip.MustParseAddrPort(homeSrc)}, SIP: event.SIP{UserAgent: homeUA}, Account: "2003"}
	d.Registered(nil, &detector.Input{Kind: event.KindRegister, Account: "2003", Event: reg}, &out)
	if a := st.b.accounts[key("2003")]; a == nil || len(a.agents) != 1 {
		t.Fatalf("registration not learnt: %+v", a)
	}
	end := &event.CallEnded{Meta: event.Meta{Time: day4.Add(4 * time.Hour)}, Account: "2001", Destination: "+882160000000", Billsec: 5 * time.Minute}
	d.Call(nil, &detector.Input{Kind: event.KindCallEnded, Account: "2001", Event: end}, &out)
	ans := &event.CallAnswered{Meta: event.Meta{Time: day4.Add(4 * time.Hour)}, Account: "2001", Destination: "+882160000000"}
	d.Call(nil, &detector.Input{Kind: event.KindCallAnswered, Account: "2001", Event: ans}, &out)
	if a := st.b.accounts[key("2001")]; a.nEnded != 1 {
		t.Fatalf("ended calls learnt: %d, want 1", a.nEnded)
	}
	if out.V.Rule != "" {
		t.Fatalf("observing hooks set a verdict: %+v", out.V)
	}
}

func TestCompileRefusesBadConfig(t *testing.T) {
	st, err := NewState(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(Config{Mode: "block", Warn: 0.9, Block: 0.8}, st); err == nil ||
		!strings.Contains(err.Error(), "anomaly.mode") || !strings.Contains(err.Error(), "anomaly.block") {
		t.Fatalf("err = %v, want anomaly.mode and anomaly.block", err)
	}
}

func TestVerdictReasonCapped(t *testing.T) {
	long := strings.Repeat("é", 300)
	r := verdictReason(Result{Score: 0.9, Reasons: []string{long, "b", "c", "d"}}, false)
	if len(r) > maxReasonLen+len("…") || !strings.HasPrefix(r, "score 0.90: éé") || !strings.HasSuffix(r, "…") {
		t.Fatalf("reason %q (%d bytes)", r, len(r))
	}
	if r := verdictReason(Result{Score: 0.8, Reasons: []string{"a", "b", "c", "d"}}, true); r != "score 0.80 (blocked): a; b; c; …" {
		t.Fatalf("reason %q", r)
	}
}
