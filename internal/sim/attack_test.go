package sim_test

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

var nextSource atomic.Uint32

// source returns a fresh 127.0.2.x address for one simulated party.
func source() netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, 2, byte(10 + nextSource.Add(1))})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startPBX(t *testing.T) *pbx.PBX {
	t.Helper()
	p, err := pbx.New(pbx.Options{Realm: "demo.test", Accounts: sim.AccountMap(sim.DemoAccounts())})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pbx Run: %v", err)
		}
	})
	<-p.Ready()
	return p
}

// cutoff answers the first n requests like the stateless responder and
// then drops everything, as a guard does once it bans the sender.
func cutoff(t *testing.T, n int) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(source(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for seen := 0; ; seen++ {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if seen >= n {
				continue
			}
			if res, ok := sim.AppendResponse(nil, buf[:k]); ok {
				_, _ = pc.WriteTo(res, from)
			}
		}
	}()
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestAttackersAgainstPBX(t *testing.T) {
	p := startPBX(t)
	acc := sim.DemoAccounts()[0]
	tests := []struct {
		name        string
		run         func(ctx context.Context, a sim.Attack) (sim.AttackReport, error)
		wantSent    int
		wantAnswers map[int]int
		wantFound   []string
	}{
		{
			name: "scanner gets 200 to OPTIONS",
			run: func(ctx context.Context, a sim.Attack) (sim.AttackReport, error) {
				return sim.Scanner{Attack: a, Probes: 4}.Run(ctx)
			},
			wantSent: 4, wantAnswers: map[int]int{200: 4},
		},
		{
			name: "cracker finds the password after wrong guesses",
			run: func(ctx context.Context, a sim.Attack) (sim.AttackReport, error) {
				return sim.Cracker{Attack: a, Account: acc.User, Domain: "demo.test",
					Passwords: []string{"1234", "password", acc.Password, "never-tried"}}.Run(ctx)
			},
			wantSent: 6, wantAnswers: map[int]int{401: 3, 403: 2, 200: 1}, wantFound: []string{acc.Password},
		},
		{
			name: "enumerator sees a challenge for every name, like FreeSWITCH",
			run: func(ctx context.Context, a sim.Attack) (sim.AttackReport, error) {
				return sim.Enumerator{Attack: a, Extensions: []string{"1001", "1002", "555"}, Domain: "demo.test"}.Run(ctx)
			},
			wantSent: 3, wantAnswers: map[int]int{401: 3}, wantFound: []string{"1001", "1002", "555"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.run(testCtx(t), sim.Attack{Target: p.Addr(), Source: source()})
			if err != nil {
				t.Fatal(err)
			}
			if r.Sent != tc.wantSent || !mapsEqual(r.Answers, tc.wantAnswers) || r.Banned || r.Unanswered != 0 {
				t.Errorf("report = %s, want sent %d answers %v, not banned", r, tc.wantSent, tc.wantAnswers)
			}
			if !slices.Equal(r.Found, tc.wantFound) {
				t.Errorf("Found = %q, want %q", r.Found, tc.wantFound)
			}
		})
	}
	if got := p.Stats().AuthFailures; got != 2 {
		t.Errorf("pbx AuthFailures = %d, want the cracker's 2 wrong guesses", got)
	}
}

func TestAttackersNoticeBan(t *testing.T) {
	tests := []struct {
		name string
		run  func(ctx context.Context, a sim.Attack) (sim.AttackReport, error)
		// The target answers the first 4 requests.
		wantSent   int
		wantBefore int
	}{
		{
			name: "scanner",
			run: func(ctx context.Context, a sim.Attack) (sim.AttackReport, error) {
				return sim.Scanner{Attack: a, Probes: 20}.Run(ctx)
			},
			wantSent: 7, wantBefore: 4,
		},
		{
			name: "enumerator",
			run: func(ctx context.Context, a sim.Attack) (sim.AttackReport, error) {
				return sim.Enumerator{Attack: a, Extensions: sim.Extensions(100, 199)}.Run(ctx)
			},
			wantSent: 7, wantBefore: 4,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := sim.Attack{Target: cutoff(t, 4), Source: source(), Timeout: 50 * time.Millisecond, Silence: 3}
			r, err := tc.run(testCtx(t), a)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Banned || r.Sent != tc.wantSent || r.AnsweredBeforeBan != tc.wantBefore || r.Unanswered != 3 {
				t.Errorf("report = %s (banned %v), want banned after %d of %d", r, r.Banned, tc.wantBefore, tc.wantSent)
			}
		})
	}
}

func TestFlooder(t *testing.T) {
	tests := []struct {
		name       string
		answer     int // requests the target answers
		count      int
		wantBanned bool
	}{
		{name: "all answered", answer: 1 << 30, count: 100},
		{name: "silenced", answer: 30, count: 2000, wantBanned: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := sim.Attack{Target: cutoff(t, tc.answer), Source: source(), Timeout: 250 * time.Millisecond, Silence: 5}
			r, err := sim.Flooder{Attack: a, Rate: 2000, Count: tc.count}.Run(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			wantAnswered := min(tc.answer, tc.count)
			if r.Answers[200] != wantAnswered || r.Banned != tc.wantBanned {
				t.Errorf("report = %s, want %d answered, banned %v", r, wantAnswered, tc.wantBanned)
			}
			if tc.wantBanned && (r.AnsweredBeforeBan != tc.answer || r.Sent >= tc.count) {
				t.Errorf("report = %s, want silenced after %d and stopped early", r, tc.answer)
			}
		})
	}
}

func mapsEqual(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
