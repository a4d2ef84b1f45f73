package pbx_test

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/demo/pbx"
	"github.com/tollguard/tollguard/internal/sim"
)

var accounts = map[string]string{"1001": "Secret-1001", "1002": "Secret-1002"}

// startPBX runs a PBX on 127.0.0.1:0 until the test ends.
func startPBX(t *testing.T, opts pbx.Options) *pbx.PBX {
	t.Helper()
	if opts.Accounts == nil {
		opts.Accounts = accounts
	}
	if opts.Realm == "" {
		opts.Realm = "demo.test"
	}
	p, err := pbx.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return p
}

var nextSource atomic.Uint32

// source returns a fresh 127.0.0.x address for one simulated party.
func source() netip.Addr {
	n := 20 + nextSource.Add(1)
	return netip.AddrFrom4([4]byte{127, 0, 1, byte(n)})
}

func startPhone(t *testing.T, target netip.AddrPort, account, password string) *sim.Phone {
	t.Helper()
	ph := sim.NewPhone(sim.PhoneConfig{Account: account, Password: password, Target: target, Source: source(), Domain: "demo.test"})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := ph.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return ph
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name             string
		account          string
		password         string
		wantCode         int
		wantRegistered   int
		wantAuthFailures uint64
	}{
		{name: "right password", account: "1001", password: "Secret-1001", wantCode: 0, wantRegistered: 1},
		{name: "wrong password is 403", account: "1001", password: "secret-1001", wantCode: 403, wantAuthFailures: 1},
		{name: "unknown user is 403", account: "9999", password: "whatever", wantCode: 403, wantAuthFailures: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startPBX(t, pbx.Options{})
			ph := startPhone(t, p.Addr(), tc.account, tc.password)
			err := ph.Register(testCtx(t))
			if got := sim.StatusCode(err); got != tc.wantCode || (tc.wantCode == 0 && err != nil) {
				t.Fatalf("Register: code %d (err %v), want %d", got, err, tc.wantCode)
			}
			if got := len(p.Registrations()); got != tc.wantRegistered {
				t.Errorf("Registrations: %d, want %d", got, tc.wantRegistered)
			}
			st := p.Stats()
			if st.AuthFailures != tc.wantAuthFailures {
				t.Errorf("AuthFailures = %d, want %d", st.AuthFailures, tc.wantAuthFailures)
			}
			if st.Challenges != 1 {
				t.Errorf("Challenges = %d, want 1 (every REGISTER is challenged first)", st.Challenges)
			}
		})
	}
}

func TestRegisterBindingAndUnregister(t *testing.T) {
	p := startPBX(t, pbx.Options{})
	ph := startPhone(t, p.Addr(), "1002", "Secret-1002")
	ctx := testCtx(t)
	if err := ph.Register(ctx); err != nil {
		t.Fatalf("Register: %v", err)
	}
	if err := ph.Register(ctx); err != nil {
		t.Fatalf("re-Register: %v", err)
	}
	regs := p.Registrations()
	if len(regs) != 1 {
		t.Fatalf("Registrations = %+v, want one binding", regs)
	}
	b := regs[0]
	if b.Account != "1002" || b.Source != ph.Addr() || len(b.Path) != 0 {
		t.Errorf("binding = %+v, want account 1002 from %s without Path", b, ph.Addr())
	}
	if err := ph.Unregister(ctx); err != nil {
		t.Fatalf("Unregister: %v", err)
	}
	if regs := p.Registrations(); len(regs) != 0 {
		t.Errorf("after Unregister: %+v, want none", regs)
	}
	if got := p.Stats().RegistersOK; got != 3 {
		t.Errorf("RegistersOK = %d, want 3", got)
	}
}

func TestStaleNonce(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	p := startPBX(t, pbx.Options{Now: clock, NonceMaxAge: 30 * time.Second})
	ph := startPhone(t, p.Addr(), "1001", "Secret-1001")
	ctx := testCtx(t)
	// A REGISTER answered with an aged nonce: the raw cracker-style client
	// lets us hold on to one nonce across the clock jump.
	res, err := sim.RegisterOnce(ctx, source(), p.Addr(), "demo.test", "1001", "Secret-1001", func() { now.Add(int64(time.Minute)) })
	if err != nil {
		t.Fatalf("RegisterOnce: %v", err)
	}
	if res.Code != 401 || !res.Stale {
		t.Errorf("aged nonce with right digest: got %d stale=%v, want 401 stale=true", res.Code, res.Stale)
	}
	st := p.Stats()
	if st.StaleChallenges != 1 || st.AuthFailures != 0 {
		t.Errorf("stats = %+v, want 1 stale challenge and no failures", st)
	}
	// A wrong password with an aged nonce is still a failure.
	res, err = sim.RegisterOnce(ctx, source(), p.Addr(), "demo.test", "1001", "wrong", func() { now.Add(int64(time.Minute)) })
	if err != nil {
		t.Fatalf("RegisterOnce: %v", err)
	}
	if res.Code != 403 {
		t.Errorf("aged nonce with wrong digest: got %d, want 403", res.Code)
	}
	// A phone registers normally after the clock jumps.
	if err := ph.Register(ctx); err != nil {
		t.Errorf("phone Register: %v", err)
	}
}
