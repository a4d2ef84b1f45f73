package sipfw

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
)

// greyRig is a rig whose proxy asks a real engine's greylist (defaults:
// min_delay 200ms, max_delay 32s) with a clock the test moves.
func greyRig(t *testing.T) (*rig, *atomic.Int64) {
	t.Helper()
	eng, err := engine.New(config.Default(), engine.Options{Set: decision.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	r := startRig(t, func(o *Options, _ *peer) {
		o.Greylist = eng
		o.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	})
	return r, &clock
}

// TestGreylistHoldsFirstUDPRequest: a stranger's REGISTER over UDP is
// seen by the Checker but not forwarded; a copy 1 ms later (a duplicate)
// is held too; the copy T1 later is forwarded, and the next request from
// the address goes at once.
func TestGreylistHoldsFirstUDPRequest(t *testing.T) {
	r, clock := greyRig(t)
	ph := newPeer(t, "127.0.0.61")
	reg := register(ph, r.addr("udp"), "1001", "")
	ph.send(r.addr("udp"), reg)
	waitCounter(t, r.p.m.drops[dropGreylist], 1)
	if n := r.rec.count(event.KindRequest); n != 1 {
		t.Fatalf("the Checker saw %d requests, want the held one", n)
	}
	clock.Add(int64(time.Millisecond))
	ph.send(r.addr("udp"), reg)
	waitCounter(t, r.p.m.drops[dropGreylist], 2)
	r.pbx.empty()

	clock.Add(int64(500 * time.Millisecond))
	ph.send(r.addr("udp"), reg)
	req := r.pbx.recvReq()
	if req.CSeq().SeqNo != 1 || req.Method != sip.REGISTER {
		t.Fatalf("PBX got %s", req.StartLine())
	}
	r.pbx.answer(req, 401, "Unauthorized", nil)
	if res := ph.recvRes(); res.StatusCode != 401 {
		t.Fatalf("phone got %d", res.StatusCode)
	}
	// The next transaction passes at once.
	next := strings.Replace(strings.Replace(reg, "CSeq: 1 ", "CSeq: 2 ", 1), "branch=z9hG4bK-reg-1001", "branch=z9hG4bK-reg2-1001", 1)
	ph.send(r.addr("udp"), next)
	if req := r.pbx.recvReq(); req.CSeq().SeqNo != 2 {
		t.Fatalf("PBX got CSeq %d, want 2", req.CSeq().SeqNo)
	}
	if got := testutilValue(r.p.m.drops[dropGreylist]); got != 2 {
		t.Fatalf("greylist drops = %v, want 2", got)
	}
}

// TestGreylistNeverHolds: ACK over UDP, and anything over TCP, goes
// through at once from a stranger; a new transaction from a held stranger
// is held (it is not a retransmission).
func TestGreylistNeverHolds(t *testing.T) {
	r, clock := greyRig(t)
	ph := newPeer(t, "127.0.0.62")
	ack := strings.Replace(strings.Replace(invite(r.addr("udp"), "1001", "1002", "ack-1", ""), "INVITE sip:", "ACK sip:", 1), "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
	ack = strings.Replace(ack, "To: <sip:1002@pbx.example>", "To: <sip:1002@pbx.example>;tag=t1", 1)
	ph.send(r.addr("udp"), ack)
	if req := r.pbx.recvReq(); req.Method != sip.ACK {
		t.Fatalf("PBX got %s, want the ACK", req.StartLine())
	}

	ph.send(r.addr("udp"), invite(r.addr("udp"), "1001", "1002", "inv-1", ""))
	waitCounter(t, r.p.m.drops[dropGreylist], 1)
	clock.Add(int64(time.Second))
	ph.send(r.addr("udp"), invite(r.addr("udp"), "1001", "1002", "inv-2", ""))
	waitCounter(t, r.p.m.drops[dropGreylist], 2)
	r.pbx.empty()

	c := dialFrom(t, r, "127.0.0.63")
	if _, err := c.Write([]byte(crlf(register(ph, r.addr("tcp"), "1003", "")))); err != nil {
		t.Fatal(err)
	}
	if req := r.pbx.recvReq(); req.Method != sip.REGISTER {
		t.Fatalf("PBX got %s, want the REGISTER over TCP", req.StartLine())
	}
	if got := testutilValue(r.p.m.drops[dropGreylist]); got != 2 {
		t.Fatalf("greylist drops = %v, want 2", got)
	}
}
