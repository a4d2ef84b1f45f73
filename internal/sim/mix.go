package sim

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Lab is what a mix runs against: the address the parties send to (a guard
// in front of a PBX, or the PBX itself), and, when the PBX is in the same
// process, a view of what reached it.
type Lab struct {
	// Target receives every party's requests.
	Target netip.AddrPort
	// Direct is the PBX itself, for the added-latency measurement
	// (requests alternate between Target and Direct); invalid skips it.
	Direct netip.AddrPort
	// Domain is the SIP domain (digest realm) of the accounts.
	Domain string
	// Accounts are the PBX's accounts; the mix needs StandardAccounts.
	Accounts []Account
	// Reached returns what reached the PBX per originating address (the
	// bottom Via host); nil when the PBX cannot be seen (an outside
	// target), and the report then shows only what the parties saw.
	Reached func() map[netip.Addr]Reach
}

// Reach is what reached the PBX from one originating address.
type Reach struct {
	Requests      int // requests of every method
	CallsAnswered int // INVITEs the PBX answered 200
}

// StandardAccounts are the accounts the standard mix expects the PBX to
// have: the four demo accounts and 20 office extensions 2001–2020.
func StandardAccounts() []Account {
	acc := DemoAccounts()
	for i := 1; i <= 20; i++ {
		u := fmt.Sprintf("20%02d", i)
		acc = append(acc, Account{User: u, Password: "Of-" + u + "-desk!"})
	}
	return acc
}

// Mix is a set of plays run together, each from its own addresses.
type Mix struct {
	// Name is "standard" or "short".
	Name string
	// Duration is how long the legitimate phones keep registering and
	// calling; the attacks run meanwhile.
	Duration time.Duration
	// Size scales the attacks: list lengths (passwords, extensions,
	// numbers) and flood counts.
	Size int
	// LoadRate and LoadFor are the request rate and duration of the
	// added-latency measurement after the plays (requests alternate
	// between Lab.Target and Lab.Direct); zero skips it.
	LoadRate int
	LoadFor  time.Duration
	// SlowInterval is the slow brute force's pause between guesses; zero
	// skips it.
	SlowInterval time.Duration
	// Plays are the scenarios.
	Plays []Play
}

// Play is one scenario of a mix.
type Play struct {
	Name   string
	Attack bool
	// What says in a few words what the play does.
	What string
	// Skip, when set, means the play is not run here, and why.
	Skip string
	// Long plays outlast Duration: they go on beside the latency
	// measurement, which they must not disturb (a request now and then).
	Long bool
	run  func(ctx context.Context, e *playEnv) *Outcome
}

// Outcome is what one play did and saw.
type Outcome struct {
	Attack  bool   `json:"attack"`
	What    string `json:"what"`
	Skipped string `json:"skipped,omitempty"`
	// Sent counts requests for request-level attacks, and registrations
	// plus calls for the legitimate plays and the compromised account.
	Sent int `json:"sent"`
	// Requests is true when Sent counts SIP requests (and enters the
	// attack totals).
	Requests bool `json:"counts_requests"`
	// Answered counts requests (or operations) that got a final answer.
	Answered int `json:"answered"`
	// ReachedPBX counts requests from the play's attack addresses that
	// reached the PBX (-1: not visible).
	ReachedPBX int `json:"reached_pbx"`
	// Sources and SourcesSilenced: attacking addresses, and how many of
	// them the target stopped answering for good.
	Sources         int `json:"sources"`
	SourcesSilenced int `json:"sources_silenced"`
	// TimeToBanMs is how long after its start the target stopped
	// answering the attack (the slowest source), when all were silenced.
	TimeToBanMs *float64 `json:"time_to_ban_ms,omitempty"`
	// CallsAttempted and CallsConnected: calls the play tried, and calls
	// answered 200.
	CallsAttempted int `json:"calls_attempted,omitempty"`
	CallsConnected int `json:"calls_connected"`
	// PBXCallsAnswered counts the calls the PBX answered from the play's
	// addresses (-1: not visible); for an attack it is the fraud count.
	PBXCallsAnswered int `json:"pbx_calls_answered"`
	// Failed counts legitimate operations that failed unexpectedly;
	// ExpectedFailures the ones that were meant to fail (the typo, the
	// stale password).
	Failed           int      `json:"failed"`
	ExpectedFailures int      `json:"expected_failures,omitempty"`
	Found            []string `json:"found,omitempty"`
	Notes            []string `json:"notes,omitempty"`

	addrs []netip.Addr // attacking addresses, for ReachedPBX
}

// playEnv hands a play its addresses and settings.
type playEnv struct {
	lab   Lab
	mix   Mix
	index int // the play's position: its addresses are 127.(40+index).0.x
	mu    sync.Mutex
}

// addr returns the play's i-th address (i from 1).
func (e *playEnv) addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, byte(40 + e.index), byte(i / 250), byte(1 + i%250)})
}

// attack returns attack settings from the play's i-th address: the tools
// keep sending (Persist), and a request unanswered for 300 ms is dropped.
func (e *playEnv) attack(i int) Attack {
	return Attack{Target: e.lab.Target, Source: e.addr(i), Timeout: 300 * time.Millisecond, Persist: true}
}

// MixReport is the protection report of one mix run.
type MixReport struct {
	Mix    string `json:"mix"`
	Target string `json:"target"`
	Attack struct {
		Sent int `json:"sent"`
		// Answered is what the attackers saw: requests that got a final
		// answer (from the PBX or from a guard refusing them).
		Answered int `json:"answered"`
		// ReachedPBX is -1 when the PBX cannot be seen (an outside target).
		ReachedPBX int     `json:"reached_pbx"`
		StoppedPct float64 `json:"stopped_pct"`
	} `json:"attack"`
	FraudCallsConnected int `json:"fraud_calls_connected"`
	Legit               struct {
		Sent   int `json:"sent"`
		Failed int `json:"failed"`
	} `json:"legit"`
	LatencyAddedMs *LatencyAdded       `json:"latency_added_ms,omitempty"`
	TimeToBanMs    map[string]float64  `json:"time_to_ban_ms"`
	Scenarios      map[string]*Outcome `json:"scenarios"`
	// Order lists the scenarios in the mix's order.
	Order     []string `json:"order"`
	ElapsedMs float64  `json:"elapsed_ms"`
	Errors    []string `json:"errors,omitempty"`
}

// LatencyAdded is the latency the target added over the direct path, from
// one load run alternating between them.
type LatencyAdded struct {
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
	TargetP50 float64 `json:"target_p50"`
	TargetP99 float64 `json:"target_p99"`
	DirectP50 float64 `json:"direct_p50"`
	DirectP99 float64 `json:"direct_p99"`
	Requests  int     `json:"requests"`
	Lost      int     `json:"lost"`
}

// RunMix plays every scenario of m against lab at once and builds the
// report. Skipped plays are listed with their reason.
func RunMix(ctx context.Context, lab Lab, m Mix) (*MixReport, error) {
	if !lab.Target.IsValid() || !lab.Target.Addr().IsLoopback() {
		return nil, fmt.Errorf("sim: mix target %s is not on loopback", lab.Target)
	}
	if lab.Domain == "" {
		lab.Domain = lab.Target.Addr().String()
	}
	start := time.Now()
	rep := &MixReport{Mix: m.Name, Target: lab.Target.String(), Scenarios: map[string]*Outcome{}, TimeToBanMs: map[string]float64{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		load LoadResult
		lerr error
	)
	runCtx, cancel := context.WithTimeout(ctx, max(m.Duration, 5*m.SlowInterval)+90*time.Second)
	defer cancel()
	var long sync.WaitGroup
	for i, p := range m.Plays {
		rep.Order = append(rep.Order, p.Name)
		if p.Long && m.SlowInterval <= 0 && p.Skip == "" {
			p.Skip = "this mix has no slow_interval (two minutes); the standard mix runs it"
		}
		if p.Skip != "" {
			rep.Scenarios[p.Name] = &Outcome{Attack: p.Attack, What: p.What, Skipped: p.Skip, ReachedPBX: -1, PBXCallsAnswered: -1}
			continue
		}
		env := &playEnv{lab: lab, mix: m, index: i}
		g := &wg
		if p.Long {
			g = &long
		}
		g.Go(func() {
			o := p.run(runCtx, env)
			o.Attack, o.What = p.Attack, p.What
			mu.Lock()
			rep.Scenarios[p.Name] = o
			mu.Unlock()
		})
	}
	wg.Wait()
	if m.LoadRate > 0 && m.LoadFor > 0 && lab.Direct.IsValid() {
		// After the plays, with their bans in force: measured in a quiet
		// phase, since on a small machine the attack traffic in the same
		// process would swamp the difference being measured. 256 sources
		// keep each one at a phone's pace (about 1 request/s per target
		// at 500/s), under any per-address flood limit.
		lctx, lcancel := context.WithTimeout(ctx, m.LoadFor+10*time.Second)
		load, lerr = Load{Targets: []netip.AddrPort{lab.Target, lab.Direct}, Rate: m.LoadRate,
			Count: m.LoadRate * int(m.LoadFor/time.Second), Duration: m.LoadFor, Sources: 256,
			SourceBase: netip.MustParseAddr("127.1.0.1")}.Run(lctx)
		lcancel()
	}
	long.Wait()
	if lerr != nil {
		rep.Errors = append(rep.Errors, lerr.Error())
	} else if len(load.Targets) == 2 {
		t, d := load.Targets[0], load.Targets[1]
		ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
		rep.LatencyAddedMs = &LatencyAdded{
			TargetP50: ms(t.Latency.Quantile(0.5)), TargetP99: ms(t.Latency.Quantile(0.99)),
			DirectP50: ms(d.Latency.Quantile(0.5)), DirectP99: ms(d.Latency.Quantile(0.99)),
			Requests: t.Sent, Lost: t.Lost,
		}
		rep.LatencyAddedMs.P50 = rep.LatencyAddedMs.TargetP50 - rep.LatencyAddedMs.DirectP50
		rep.LatencyAddedMs.P99 = rep.LatencyAddedMs.TargetP99 - rep.LatencyAddedMs.DirectP99
	}
	var reached map[netip.Addr]Reach
	if lab.Reached != nil {
		reached = lab.Reached()
	}
	for _, name := range rep.Order {
		o := rep.Scenarios[name]
		if o.Skipped != "" {
			continue
		}
		o.ReachedPBX, o.PBXCallsAnswered = -1, -1
		if reached != nil {
			o.ReachedPBX, o.PBXCallsAnswered = 0, 0
			for _, a := range o.addrs {
				o.ReachedPBX += reached[a].Requests
				o.PBXCallsAnswered += reached[a].CallsAnswered
			}
		}
		if o.Attack {
			if o.Requests {
				rep.Attack.Sent += o.Sent
				rep.Attack.Answered += o.Answered
				rep.Attack.ReachedPBX += max(o.ReachedPBX, 0)
			}
			if o.PBXCallsAnswered >= 0 {
				rep.FraudCallsConnected += o.PBXCallsAnswered
			} else {
				rep.FraudCallsConnected += o.CallsConnected
			}
			if o.TimeToBanMs != nil {
				rep.TimeToBanMs[name] = *o.TimeToBanMs
			}
		} else {
			rep.Legit.Sent += o.Sent
		}
		rep.Legit.Failed += o.Failed
	}
	if reached == nil {
		rep.Attack.ReachedPBX = -1
	} else if rep.Attack.Sent > 0 {
		rep.Attack.StoppedPct = 100 * float64(rep.Attack.Sent-rep.Attack.ReachedPBX) / float64(rep.Attack.Sent)
	}
	rep.ElapsedMs = float64(time.Since(start).Milliseconds())
	return rep, nil
}

// fromAttacks fills an outcome from attackers' reports.
func fromAttacks(rs []AttackReport, errs []error) *Outcome {
	o := &Outcome{Requests: true}
	var slowest time.Duration
	for _, r := range rs {
		o.Sent += r.Sent
		for _, n := range r.Answers {
			o.Answered += n
		}
		o.Sources++
		o.addrs = append(o.addrs, r.Source)
		if r.Banned {
			o.SourcesSilenced++
			slowest = max(slowest, r.BannedAfter)
		}
		o.CallsConnected += r.Connected
		o.Found = append(o.Found, r.Found...)
	}
	slices.Sort(o.Found)
	o.Found = slices.Compact(o.Found)
	if o.Sources > 0 && o.SourcesSilenced == o.Sources {
		ms := float64(slowest.Microseconds()) / 1000
		o.TimeToBanMs = &ms
	}
	for _, err := range errs {
		if err != nil {
			o.Notes = append(o.Notes, err.Error())
		}
	}
	return o
}

// attackPlay wraps attackers that run at once, each from its own address.
func attackPlay(n func(e *playEnv) int, run func(ctx context.Context, e *playEnv, i int) (AttackReport, error)) func(context.Context, *playEnv) *Outcome {
	return func(ctx context.Context, e *playEnv) *Outcome {
		count := n(e)
		rs := make([]AttackReport, count)
		errs := make([]error, count)
		var wg sync.WaitGroup
		for i := range count {
			wg.Go(func() { rs[i], errs[i] = run(ctx, e, i) })
		}
		wg.Wait()
		return fromAttacks(rs, errs)
	}
}
