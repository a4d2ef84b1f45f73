package sim

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// StandardMix is the mix behind `tollguard simulate --scenario standard`
// and `make bench`: every scenario at once, legitimate phones calling for
// 40 s, then 20 s of load at 500 requests/s to measure the added latency.
func StandardMix() Mix {
	return Mix{Name: "standard", Duration: 40 * time.Second, Size: 60, LoadRate: 500, LoadFor: 20 * time.Second,
		SlowInterval: SlowGuessInterval, Plays: Plays()}
}

// ShortMix is StandardMix scaled down to about 20 s, without the slow
// brute force (which needs two minutes; TestSlowBruteForce runs it alone).
func ShortMix() Mix {
	return Mix{Name: "short", Duration: 10 * time.Second, Size: 20, LoadRate: 200, LoadFor: 3 * time.Second, Plays: Plays()}
}

// SlowGuessInterval is the slow brute force's pace: just slower than
// register_failure[0] (3 failures in 60 s) ever sees 3 failures in a
// minute, so only register_failure[1] (5 in 1 h, ip_account) can catch it,
// at the 5th failure, 4 × 31 s after the first. No pace below rule [0]
// reaches 5 failures sooner: that is why the slow scenario takes two
// minutes.
const SlowGuessInterval = 31 * time.Second

// MixByName returns the named mix: standard or short.
func MixByName(name string) (Mix, error) {
	switch name {
	case "standard":
		return StandardMix(), nil
	case "short":
		return ShortMix(), nil
	}
	return Mix{}, fmt.Errorf("sim: unknown mix %q (want standard or short)", name)
}

// disguisedUA is a User-Agent no fingerprint list matches: what a careful
// attacker sends instead of svwar's default.
const disguisedUA = "Linphone/5.2.5 (belle-sip/5.2.0)"

// intlNumber returns the i-th international number the attackers dial
// (Ofcom's drama range, never a real subscriber).
func intlNumber(i int) string { return fmt.Sprintf("0044163296%04d", i%10000) }

// highRiskNumber is a number in a satellite range (+882 16, Thuraya) of
// the kind international revenue share fraud dials: what a compromised
// account calls, and what the lab's call policy refuses.
func highRiskNumber(i int) string { return fmt.Sprintf("0088216%06d", i%1000000) }

func guesses(n int) []string {
	out := append([]string(nil), CommonPasswords...)
	for i := len(out); i < n; i++ {
		out = append(out, fmt.Sprintf("pw%04d", i))
	}
	return out[:n]
}

func one(*playEnv) int { return 1 }

// Plays returns the scenarios of the standard mix, in report order.
func Plays() []Play {
	scan := func(method string) Play {
		return Play{Name: "scan_" + lower(method), Attack: true,
			What: "svmap sweep with " + method + " (friendly-scanner)",
			run: attackPlay(one, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				return Scanner{Attack: e.attack(1), Probes: e.mix.Size / 2, Method: method}.Run(ctx)
			})}
	}
	enum := func(method string) Play {
		return Play{Name: "enumerate_" + lower(method), Attack: true,
			What: "svwar extension sweep with " + method + " at 20/s, disguised User-Agent",
			run: attackPlay(one, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				a := e.attack(1)
				a.Interval = 50 * time.Millisecond
				return Enumerator{Attack: a, Extensions: Extensions(100, 100+e.mix.Size-1), Domain: e.lab.Domain,
					UserAgent: disguisedUA, Method: method}.Run(ctx)
			})}
	}
	return []Play{
		scan("OPTIONS"), scan("REGISTER"), scan("INVITE"),
		enum("REGISTER"), enum("OPTIONS"), enum("INVITE"),
		{Name: "brute_force_fast", Attack: true, What: "svcrack on 1001 from one address, as fast as answered",
			run: attackPlay(one, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				return Cracker{Attack: e.attack(1), Account: "1001", Passwords: guesses(e.mix.Size), Domain: e.lab.Domain}.Run(ctx)
			})},
		{Name: "brute_force_slow", Attack: true, Long: true,
			What: "svcrack on 2010 from one address, one guess every 31 s: under 3 failures a minute",
			run:  attackPlay(one, slowGuess)},
		{Name: "password_spray", Attack: true, What: "one address, two common passwords on every account",
			run: attackPlay(one, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				return spray(ctx, e)
			})},
		{Name: "distributed_guessing", Attack: true, What: "many addresses, two guesses each, on account 1002",
			run: attackPlay(func(e *playEnv) int { return e.mix.Size / 2 }, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				if !pause(ctx, time.Duration(i)*100*time.Millisecond) {
					return AttackReport{}, nil
				}
				return Cracker{Attack: e.attack(1 + i), Account: "1002", Passwords: guesses(2 + i)[i:], Domain: e.lab.Domain}.Run(ctx)
			})},
		{Name: "invite_guessing", Attack: true, What: "password guesses through the call challenge (INVITE → 407)",
			run: attackPlay(one, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				return Cracker{Attack: e.attack(1), Account: "1003", Passwords: guesses(e.mix.Size), Domain: e.lab.Domain,
					Method: "INVITE", Number: intlNumber(7)}.Run(ctx)
			})},
		{Name: "unauthenticated_international", Attack: true, What: "INVITEs without credentials to international numbers",
			run: attackPlay(one, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				a := e.attack(1)
				a.Interval = 50 * time.Millisecond
				nums := make([]string, e.mix.Size/2)
				for k := range nums {
					nums[k] = intlNumber(100 + k)
				}
				return Enumerator{Attack: a, Extensions: nums, Domain: e.lab.Domain, UserAgent: disguisedUA,
					Method: "INVITE", FromUser: "1001"}.Run(ctx)
			})},
		{Name: "compromised_account", Attack: true, What: "1004's real password from a new address: calls to a satellite range, then a burst of 5 at once",
			run: compromised},
		{Name: "flood", Attack: true, What: "OPTIONS flood from many addresses (Size/6), 500/s each",
			run: attackPlay(func(e *playEnv) int { return e.mix.Size / 6 }, func(ctx context.Context, e *playEnv, i int) (AttackReport, error) {
				return Flooder{Attack: e.attack(1 + i), Rate: 500, Count: e.mix.Size * 25, UserAgent: disguisedUA}.Run(ctx)
			})},
		{Name: "forged_scanner_datagram", Attack: true, What: "one friendly-scanner datagram with a registered phone's address (raw socket)",
			run: forged},
		{Name: "phones", What: "3 phones register and call", run: phones},
		{Name: "busy_office", What: "20 phones behind one address, one with a stale password", run: office},
		{Name: "typo", What: "a phone mistypes its password once, then registers and calls", run: typo},
		{Name: "moved_phone", What: "a phone registers and calls, moves to a new address, registers and calls", run: moved},
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// slowGuess guesses 2010's password from one address every
// Mix.SlowInterval: five guesses, the fifth failure trips
// register_failure[1]; then a sixth at once, which the guard must refuse
// (a real guesser would send it one interval later and be refused the
// same way). Zero SlowInterval sends nothing.
func slowGuess(ctx context.Context, e *playEnv, _ int) (AttackReport, error) {
	var total AttackReport
	total.Kind, total.Answers = "cracker", map[int]int{}
	total.Source = e.addr(1)
	if e.mix.SlowInterval <= 0 {
		return total, nil
	}
	start := time.Now()
	pws := guesses(6)
	for k, pw := range pws {
		r, err := Cracker{Attack: e.attack(1), Account: "2010", Passwords: []string{pw}, Domain: e.lab.Domain}.Run(ctx)
		total.add(r)
		if err != nil {
			return total, err
		}
		wait := e.mix.SlowInterval
		if k == len(pws)-2 {
			wait = time.Second
		}
		if k < len(pws)-1 && !pause(ctx, wait) {
			break
		}
	}
	total.Elapsed = time.Since(start)
	return total, nil
}

// spray tries two common passwords on every account from one address.
func spray(ctx context.Context, e *playEnv) (AttackReport, error) {
	var total AttackReport
	total.Kind, total.Answers = "spray", map[int]int{}
	a := e.attack(1)
	start := time.Now()
	var run int // unanswered requests in a row across accounts
	for _, acc := range e.lab.Accounts {
		r, err := Cracker{Attack: a, Account: acc.User, Passwords: []string{"123456", "Welcome1"}, Domain: e.lab.Domain}.Run(ctx)
		if err != nil {
			return total, err
		}
		if total.Sent == 0 {
			total.Source = r.Source
		}
		if r.Unanswered == r.Sent {
			if run == 0 {
				total.BannedAfter = time.Since(start) - r.Elapsed
			}
			run += r.Sent
		} else {
			run = 0
		}
		total.Sent += r.Sent
		total.Unanswered += r.Unanswered
		for c, n := range r.Answers {
			total.Answers[c] += n
		}
		total.Found = append(total.Found, r.Found...)
	}
	total.Banned = run >= a.silence()
	total.Elapsed = time.Since(start)
	return total, nil
}

// legit tracks a legitimate play's operations.
type legit struct {
	mu sync.Mutex
	o  Outcome
}

func (l *legit) op(err error, expectFail bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.o.Sent++
	switch {
	case expectFail && err != nil:
		l.o.ExpectedFailures++
	case err != nil:
		l.o.Failed++
		if len(l.o.Notes) < 10 {
			l.o.Notes = append(l.o.Notes, err.Error())
		}
	default:
		l.o.Answered++
	}
}

func (l *legit) call(err error) {
	l.mu.Lock()
	l.o.CallsAttempted++
	if err == nil {
		l.o.CallsConnected++
	}
	l.mu.Unlock()
	l.op(err, false)
}

func (l *legit) outcome() *Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.o
	o.addrs = slices.Clone(l.o.addrs)
	return &o
}

// startPhone creates and binds a phone.
func startPhone(ctx context.Context, e *playEnv, acc Account, src int, l *legit) *Phone {
	ph := NewPhone(PhoneConfig{Account: acc.User, Password: acc.Password, Target: e.lab.Target,
		Source: e.addr(src), Domain: e.lab.Domain, UserAgent: "Yealink SIP-T46U 108.86.0.20"})
	if err := ph.Start(ctx); err != nil {
		l.op(err, false)
		return nil
	}
	l.mu.Lock()
	if a := e.addr(src); !slices.Contains(l.o.addrs, a) {
		l.o.addrs = append(l.o.addrs, a)
	}
	l.mu.Unlock()
	return ph
}

// busy registers ph and calls every `every` until the mix's duration is up.
func busy(ctx context.Context, e *playEnv, ph *Phone, l *legit, every time.Duration, until time.Time) {
	err := ph.Register(ctx)
	l.op(err, false)
	for err == nil && time.Now().Before(until) {
		l.call(ph.Call(ctx, intlNumber(9000), 300*time.Millisecond))
		if !pause(ctx, every) {
			return
		}
	}
}

func account(e *playEnv, user string) Account {
	for _, a := range e.lab.Accounts {
		if a.User == user {
			return a
		}
	}
	return Account{User: user}
}

func phones(ctx context.Context, e *playEnv) *Outcome {
	var l legit
	until := time.Now().Add(e.mix.Duration)
	var wg sync.WaitGroup
	for i, u := range []string{"1001", "1002", "1003"} {
		if ph := startPhone(ctx, e, account(e, u), 1+i, &l); ph != nil {
			wg.Go(func() { busy(ctx, e, ph, &l, 3*time.Second, until) })
		}
	}
	wg.Wait()
	return l.outcome()
}

func office(ctx context.Context, e *playEnv) *Outcome {
	var l legit
	until := time.Now().Add(e.mix.Duration)
	var wg sync.WaitGroup
	for i := 1; i <= 20; i++ {
		acc := account(e, fmt.Sprintf("20%02d", i))
		if i == 20 {
			acc.Password = "the-old-one" // changed on the PBX, not on the phone
		}
		ph := startPhone(ctx, e, acc, 1, &l) // all behind one address
		if ph == nil {
			continue
		}
		wg.Go(func() {
			if i == 20 {
				for time.Now().Before(until) {
					l.op(ph.Register(ctx), true)
					if !pause(ctx, 10*time.Second) {
						return
					}
				}
				return
			}
			if !pause(ctx, time.Duration(i)*150*time.Millisecond) {
				return
			}
			busy(ctx, e, ph, &l, 5*time.Second, until)
		})
	}
	wg.Wait()
	return l.outcome()
}

func typo(ctx context.Context, e *playEnv) *Outcome {
	var l legit
	acc := account(e, "1002")
	wrong := acc
	wrong.Password = acc.Password[:len(acc.Password)-1] + "?"
	if ph := startPhone(ctx, e, wrong, 1, &l); ph != nil {
		l.op(ph.Register(ctx), true)
	}
	if ph := startPhone(ctx, e, acc, 1, &l); ph != nil {
		busy(ctx, e, ph, &l, 4*time.Second, time.Now().Add(e.mix.Duration/2))
	}
	return l.outcome()
}

func moved(ctx context.Context, e *playEnv) *Outcome {
	var l legit
	acc := account(e, "1003")
	half := e.mix.Duration / 2
	if ph := startPhone(ctx, e, acc, 1, &l); ph != nil {
		busy(ctx, e, ph, &l, 4*time.Second, time.Now().Add(half))
	}
	if ph := startPhone(ctx, e, acc, 2, &l); ph != nil {
		busy(ctx, e, ph, &l, 4*time.Second, time.Now().Add(half))
	}
	return l.outcome()
}

// compromised uses 1004's real password from a new address: it registers,
// places calls to a satellite (IRSF) range one after another, then five at
// once.
func compromised(ctx context.Context, e *playEnv) *Outcome {
	var l legit
	ph := startPhone(ctx, e, account(e, "1004"), 1, &l)
	if ph != nil {
		l.op(ph.Register(ctx), false)
		for k := range e.mix.Size / 10 {
			l.call(ph.Call(ctx, highRiskNumber(200+k), 200*time.Millisecond))
		}
		var wg sync.WaitGroup
		for k := range 5 {
			wg.Go(func() { l.call(ph.Call(ctx, highRiskNumber(300+k), 500*time.Millisecond)) })
		}
		wg.Wait()
	}
	o := l.outcome()
	// The calls are the attack here; a refused call is a success of the
	// guard, not a legitimate failure.
	o.Failed, o.Notes = 0, nil
	o.Sources = 1
	return o
}

// forged sends one friendly-scanner OPTIONS whose source address is a
// registered phone's, then checks the phone can still call.
func forged(ctx context.Context, e *playEnv) *Outcome {
	var l legit
	o := &Outcome{Requests: true, Sources: 1}
	marker := e.addr(200) // the Via host: how the PBX tells the forged request apart
	o.addrs = append(o.addrs, marker)
	ph := startPhone(ctx, e, account(e, "1001"), 1, &l)
	if ph == nil {
		o.Notes = append(o.Notes, "victim phone did not start")
		return o
	}
	if err := ph.Register(ctx); err != nil {
		o.Notes = append(o.Notes, "victim did not register: "+err.Error())
		return o
	}
	req := rawRequest{Method: "OPTIONS", URI: "sip:100@" + e.lab.Target.Addr().String(), FromUser: "100",
		FromDisplay: "sipvicious", ToUser: "100", Domain: "1.1.1.1", UserAgent: ScannerUserAgent,
		CallID: randHex(12), CSeq: 1}
	if err := Forge(ph.Addr(), e.lab.Target, req.bytes(netip.AddrPortFrom(marker, 5060))); err != nil {
		o.Skipped = err.Error()
		return o
	}
	o.Sent = 1
	pause(ctx, 300*time.Millisecond)
	for range 3 {
		err := ph.Call(ctx, intlNumber(9001), 200*time.Millisecond)
		l.call(err)
	}
	v := l.outcome()
	// The victim's calls: not the attack's, the PBX counts them under the
	// victim's address.
	o.Failed, o.CallsAttempted, o.CallsConnected = v.Failed, v.CallsAttempted, v.CallsConnected
	if v.Failed > 0 {
		o.Notes = append(o.Notes, fmt.Sprintf("the victim's calls failed %d times after the forged datagram", v.Failed))
	} else {
		o.Notes = append(o.Notes, fmt.Sprintf("the victim placed %d calls afterwards, all answered", v.CallsConnected))
	}
	return o
}
