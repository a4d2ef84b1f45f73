package engine

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/event"
)

// TestGreylist plays one stranger, one phone that registers and one
// address the store knows through the engine's greylisting, with the
// clock given, and reloads it off and on.
func TestGreylist(t *testing.T) {
	e, set, rec := newEngine(t, "allow: [192.0.2.0/24]\n")
	stranger := netip.MustParseAddr("203.0.113.5")
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	if v := e.Greylist(stranger, 1, at(0)); v.Action != Drop || v.Rule != RuleGreylist {
		t.Fatalf("a stranger's first request: %+v, want drop greylist", v)
	}
	if v := e.Greylist(stranger, 1, at(5)); v.Action != Drop {
		t.Fatalf("a copy 5 ms later: %+v, want held", v)
	}
	if v := e.Greylist(stranger, 2, at(500)); v.Action != Drop {
		t.Fatalf("another transaction: %+v, want held", v)
	}
	if v := e.Greylist(stranger, 1, at(500)); v.Action != Pass || v.Rule != RuleGreylist {
		t.Fatalf("the retransmission: %+v, want pass greylist", v)
	}
	if v := e.Greylist(stranger, 3, at(600)); v != (Verdict{}) {
		t.Fatalf("a passed address's next request: %+v, want a plain pass", v)
	}
	if v := e.Greylist(netip.MustParseAddr("192.0.2.9"), 1, at(0)); v.Action != Pass {
		t.Fatalf("an allowed address: %+v", v)
	}

	// A registration passes its address at once, and so does an
	// address the store knows (Known, reloaded at start).
	phone := netip.MustParseAddrPort("203.0.113.6:5060")
	e.Check(context.Background(), &event.Register{Meta: event.Meta{Time: at(0), Source: phone, Transport: "udp"},
		SIP: event.SIP{Method: "REGISTER", ToUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"})
	if v := e.Greylist(phone.Addr(), 1, at(1)); v.Action != Pass {
		t.Fatalf("a registered address: %+v", v)
	}
	known := netip.MustParseAddr("203.0.113.7")
	e.shared.Known.Registered(known, "1002") // as the store's reload does, without trust
	if v := e.Greylist(known, 1, at(1)); v.Action != Pass {
		t.Fatalf("an address the store knows: %+v", v)
	}
	if len(rec.got) != 0 || set.Len() != 0 {
		t.Fatalf("greylisting decided %v: it must never ban", rec.got)
	}

	// Reload applies: off passes everything, on again starts over.
	off, _ := config.Parse("off.yaml", []byte("greylist: {enabled: false}\n"))
	if err := e.Reload(off); err != nil {
		t.Fatal(err)
	}
	if v := e.Greylist(netip.MustParseAddr("203.0.113.8"), 1, at(0)); v.Action != Pass {
		t.Fatalf("greylisting off: %+v", v)
	}
	if e.GreylistTableBytes() != 0 {
		t.Fatal("greylisting off still holds a table")
	}
	on, _ := config.Parse("on.yaml", []byte("greylist: {min_delay: 1s}\n"))
	if err := e.Reload(on); err != nil {
		t.Fatal(err)
	}
	if v := e.Greylist(netip.MustParseAddr("203.0.113.8"), 1, at(0)); v.Action != Drop {
		t.Fatalf("greylisting on again: %+v", v)
	}
	if v := e.Greylist(netip.MustParseAddr("203.0.113.8"), 1, at(500)); v.Action != Drop {
		t.Fatalf("a copy within the reloaded min_delay of 1s: %+v", v)
	}
	if v := e.Greylist(netip.MustParseAddr("203.0.113.8"), 1, at(1500)); v.Action != Pass {
		t.Fatalf("a copy after the reloaded min_delay: %+v", v)
	}
	// A reload that changes something else keeps the table.
	other, _ := config.Parse("other.yaml", []byte("greylist: {min_delay: 1s}\nhoneypot: {accounts: ['9999']}\n"))
	if err := e.Reload(other); err != nil {
		t.Fatal(err)
	}
	if v := e.Greylist(netip.MustParseAddr("203.0.113.8"), 9, at(2000)); v.Action != Pass {
		t.Fatalf("a passed address after an unrelated reload: %+v", v)
	}
}

// TestGreylistFailureWithdrawsPass: a stranger that passed by
// retransmitting once and then fails a password is held again; an
// address that registered is not.
func TestGreylistFailureWithdrawsPass(t *testing.T) {
	e, _, _ := newEngine(t, "")
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	fail := func(src netip.Addr, ms int) {
		e.Check(context.Background(), &event.AuthFailure{Meta: event.Meta{Time: at(ms), Source: netip.AddrPortFrom(src, 5060), Transport: "udp"},
			SIP: event.SIP{Method: "REGISTER", ToUser: "1001", AuthUser: "1001", HasCredentials: true}, Code: 403})
	}
	guesser := netip.MustParseAddr("203.0.113.40")
	e.Greylist(guesser, 1, at(0))
	if v := e.Greylist(guesser, 1, at(500)); v.Action != Pass {
		t.Fatalf("the retransmitted first request: %+v", v)
	}
	fail(guesser, 510)
	if v := e.Greylist(guesser, 2, at(520)); v.Action != Drop || v.Rule != RuleGreylist {
		t.Fatalf("the guess after a failure: %+v, want held", v)
	}

	phone := netip.MustParseAddrPort("203.0.113.41:5060")
	e.Check(context.Background(), &event.Register{Meta: event.Meta{Time: at(0), Source: phone, Transport: "udp"},
		SIP: event.SIP{Method: "REGISTER", ToUser: "1001", AuthUser: "1001", HasCredentials: true}, Account: "1001"})
	fail(phone.Addr(), 10)
	if v := e.Greylist(phone.Addr(), 3, at(20)); v.Action != Pass {
		t.Fatalf("a registered phone's typo: %+v, want pass", v)
	}
}

func TestGreylistConfigErrors(t *testing.T) {
	for _, y := range []string{
		"greylist: {min_delay: 40s}\n",
		"greylist: {remember: 0s}\n",
		"greylist: {max_sources: 10}\n",
	} {
		if _, err := config.Parse("bad.yaml", []byte(y)); err == nil {
			t.Errorf("config %q accepted", y)
		}
	}
}
