package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine/greylist"
)

// RuleGreylist names the verdicts of greylisting: drop (held until the
// client retransmits) and pass (a retransmission released).
const RuleGreylist = "greylist"

// Greylister is asked, after Check passed a request that arrived over UDP
// from outside, whether to forward it now. It must be cheap and must not
// block. The caller never asks about ACK and CANCEL, responses, requests
// over TCP, TLS or WebSocket, or requests from the upstream.
type Greylister interface {
	// Greylist returns Pass, or Drop with rule "greylist" when the request
	// is held until its client retransmits it. txn identifies the
	// transaction: a hash of the source address and port, the top Via
	// branch, Call-ID and CSeq.
	Greylist(src netip.Addr, txn uint64, now time.Time) Verdict
}

// Greylist implements Greylister.
func (PassThrough) Greylist(netip.Addr, uint64, time.Time) Verdict { return Verdict{} }

var (
	_ Greylister = PassThrough{}
	_ Greylister = (*Engine)(nil)
)

// Greylist implements Greylister (config greylist; package greylist). A
// source passes at once when it is allowed, authenticated (a
// registration, an answered credentialed call: see trust; or a
// registration reloaded from the store, detector.Known) or passed before;
// otherwise its request is held (Drop, rule "greylist", no ban) until the
// same transaction arrives again between greylist.min_delay and
// greylist.max_delay later (RFC 3261 Timers A and E), which is forwarded
// (counted as a pass with rule "greylist") and passes the source for
// greylist.remember.
//
// Trade-offs: a phone's first request from a new address waits one
// retransmission (T1, about 0.5 s; a carrier calling from a new address
// adds that to its post-dial delay once: carriers belong in allow). An
// attacker who retransmits gets through and still meets every other rule;
// his first failed password withdraws a pass earned by retransmitting
// (checkAuthFailure), so after it he must retransmit every guess. A forger who sends the same datagram
// twice with a victim's address passes the victim's address: that only
// spares the victim the hold, it bans nothing.
func (e *Engine) Greylist(src netip.Addr, txn uint64, now time.Time) Verdict {
	t := e.rules.Load().grey
	if t == nil {
		return Verdict{}
	}
	src = decision.Unmap(src)
	if !src.IsValid() || e.lists.Load().Allowed(src) {
		return Verdict{}
	}
	switch t.Check(src, txn, now) {
	case greylist.Passed:
		return Verdict{}
	case greylist.Released:
		return e.count(Verdict{Rule: RuleGreylist, Reason: "retransmitted"})
	}
	// The table's mark is lost when its slot is evicted; the
	// registrations (kept per account, reloaded from the store at start)
	// still know the address.
	if e.shared.Known.HasAny(src) {
		t.Pass(src, now)
		return Verdict{}
	}
	return e.count(Verdict{Action: Drop, Rule: RuleGreylist, Reason: "held until retransmitted"})
}

// GreylistTableBytes returns the memory held by the greylist table (0
// when greylisting is off).
func (e *Engine) GreylistTableBytes() int {
	if t := e.rules.Load().grey; t != nil {
		return t.Bytes()
	}
	return 0
}

// compileGreylist returns the greylist table for cfg: nil when it is off,
// old's when neither greylist nor flood.ipv6_prefix changed, else a new
// one (every stranger is held once more: the safe side).
func compileGreylist(cfg *config.Config, old *rules) (*greylist.Table, error) {
	gc := cfg.Greylist
	if !gc.Enabled {
		return nil, nil
	}
	if old != nil && old.grey != nil && old.cfg.Greylist == gc && old.cfg.Flood.IPv6Prefix == cfg.Flood.IPv6Prefix {
		return old.grey, nil
	}
	t, err := greylist.New(greylist.Config{MinDelay: gc.MinDelay.D(), MaxDelay: gc.MaxDelay.D(), Remember: gc.Remember.D(),
		IPv6Prefix: cfg.Flood.IPv6Prefix, MaxSources: gc.MaxSources})
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	return t, nil
}
