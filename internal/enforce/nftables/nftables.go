// Package nftables bans addresses in the kernel: an inet table tollguard
// owns, holding an IPv4 and an IPv6 set whose elements carry their own
// timeouts, and a chain that drops packets from either set.
//
// The chain hooks prerouting at priority -300 (raw), before connection
// tracking (-200) and before any filter chain (0). A packet from a banned
// address is therefore dropped before conntrack looks it up, so an
// established conntrack entry cannot let it through. That is fail2ban's
// well-known UDP failure mode: its iptables rule is appended after
// "ct state established accept", and a SIP scanner keeping one UDP flow
// alive (same source port, packets more often than the conntrack timeout)
// is never blocked.
//
// Expiry is the kernel's: an element with a timeout disappears on its own,
// even when tollguard is not running. Sync rebuilds the sets from the
// stored bans at start in one transaction.
//
// Only bans of proven sources may be handed to this package (DESIGN key
// decision 9): a kernel ban aimed at an address named by one forged UDP
// datagram would let an attacker cut off anyone. The caller decides what is
// proven; this package does not check.
package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	nft "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// Names inside the table.
const (
	SetIPv4 = "ban4"
	SetIPv6 = "ban6"
	Chain   = "prerouting"
	// Priority is the chain's priority: raw, before conntrack (-200).
	Priority = -300
)

// Config configures an Enforcer.
type Config struct {
	// Table is the inet table's name (config nftables.table). Default
	// tollguard.
	Table string
	// NetNS, when not zero, is a file descriptor of the network namespace
	// to work in (tests); zero is the current namespace.
	NetNS int
	// Now is the clock used to turn expiry times into timeouts.
	Now func() time.Time
	// Registry receives the metrics. Optional.
	Registry prometheus.Registerer
}

// Ban is one address to drop until Until (the zero time: until unbanned).
type Ban struct {
	Addr  netip.Addr
	Until time.Time
}

// Enforcer owns the table. Its methods are safe for concurrent use; each
// call is one netlink transaction (one Flush), applied atomically by the
// kernel.
type Enforcer struct {
	cfg   Config
	conn  *nft.Conn
	table *nft.Table
	set4  *nft.Set
	set6  *nft.Set

	mu sync.Mutex
	// in mirrors the sets: expiry per address (zero: none). It decides
	// whether a ban replaces an element (delete + add, to set a new
	// timeout) or adds one.
	in map[netip.Addr]time.Time

	flushes  prometheus.Counter
	elements *prometheus.CounterVec
	errs     prometheus.Counter
}

// Open creates the table, sets and chain if they are missing and replaces
// the chain's rules, in one transaction. Elements already in the sets are
// kept (call Sync to replace them). It needs CAP_NET_ADMIN.
func Open(cfg Config) (*Enforcer, error) {
	if cfg.Table == "" {
		cfg.Table = "tollguard"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	opts := []nft.ConnOption{nft.AsLasting()}
	if cfg.NetNS != 0 {
		opts = append(opts, nft.WithNetNSFd(cfg.NetNS))
	}
	c, err := nft.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: netlink: %w", err)
	}
	e := &Enforcer{cfg: cfg, conn: c, in: map[netip.Addr]time.Time{}}
	e.table = c.AddTable(&nft.Table{Family: nft.TableFamilyINet, Name: cfg.Table})
	e.set4 = &nft.Set{Table: e.table, Name: SetIPv4, KeyType: nft.TypeIPAddr, HasTimeout: true}
	e.set6 = &nft.Set{Table: e.table, Name: SetIPv6, KeyType: nft.TypeIP6Addr, HasTimeout: true}
	for _, s := range []*nft.Set{e.set4, e.set6} {
		if err := c.AddSet(s, nil); err != nil {
			c.CloseLasting()
			return nil, fmt.Errorf("nftables: set %s: %w", s.Name, err)
		}
	}
	ch := c.AddChain(&nft.Chain{
		Name:     Chain,
		Table:    e.table,
		Type:     nft.ChainTypeFilter,
		Hooknum:  nft.ChainHookPrerouting,
		Priority: nft.ChainPriorityRef(Priority),
	})
	c.FlushChain(ch)
	// meta nfproto ipv4 ip saddr @ban4 counter drop
	c.AddRule(&nft.Rule{Table: e.table, Chain: ch, Exprs: dropFrom(unix.NFPROTO_IPV4, 12, 4, e.set4)})
	// meta nfproto ipv6 ip6 saddr @ban6 counter drop
	c.AddRule(&nft.Rule{Table: e.table, Chain: ch, Exprs: dropFrom(unix.NFPROTO_IPV6, 8, 16, e.set6)})
	if err := c.Flush(); err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("nftables: creating table %s: %w", cfg.Table, err)
	}
	if err := e.metrics(cfg.Registry); err != nil {
		c.CloseLasting()
		return nil, err
	}
	return e, nil
}

// dropFrom builds "meta nfproto P <saddr at off,len> @set counter drop".
func dropFrom(proto byte, off, n uint32, set *nft.Set) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

func (e *Enforcer) metrics(reg prometheus.Registerer) error {
	e.flushes = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_nftables_flushes_total",
		Help: "Netlink transactions sent to the kernel."})
	e.elements = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tollguard_nftables_elements_total",
		Help: "Set elements changed, by operation (add, delete)."}, []string{"op"})
	e.errs = prometheus.NewCounter(prometheus.CounterOpts{Name: "tollguard_nftables_errors_total",
		Help: "Transactions the kernel refused."})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{e.flushes, e.elements, e.errs} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("nftables: registering metrics: %w", err)
		}
	}
	return nil
}

// Close releases the netlink socket. The table and its bans stay in the
// kernel and keep expiring on their own.
func (e *Enforcer) Close() error { return e.conn.CloseLasting() }

// Remove deletes the table and everything in it.
func (e *Enforcer) Remove() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conn.DelTable(e.table)
	e.in = map[netip.Addr]time.Time{}
	return e.flush()
}

func (e *Enforcer) flush() error {
	e.flushes.Inc()
	if err := e.conn.Flush(); err != nil {
		e.errs.Inc()
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// element returns the set and element for b, and false when b has already
// expired or its address is invalid.
func (e *Enforcer) element(b Ban, now time.Time) (*nft.Set, nft.SetElement, bool) {
	a := b.Addr.Unmap()
	if !a.IsValid() || a.Zone() != "" {
		return nil, nft.SetElement{}, false
	}
	var el nft.SetElement
	if !b.Until.IsZero() {
		d := b.Until.Sub(now)
		if d <= 0 {
			return nil, nft.SetElement{}, false
		}
		// The kernel counts in milliseconds; round up so a ban never
		// ends early.
		el.Timeout = d.Truncate(time.Millisecond) + time.Millisecond
	}
	el.Key = a.AsSlice()
	if a.Is4() {
		return e.set4, el, true
	}
	return e.set6, el, true
}

// Ban adds bans in one transaction. An address already banned gets the new
// expiry (its element is replaced). Bans already expired and invalid
// addresses are skipped; it reports how many were applied.
func (e *Enforcer) Ban(bans ...Ban) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	type op struct {
		set *nft.Set
		el  nft.SetElement
		a   netip.Addr
		u   time.Time
	}
	var ops []op
	for _, b := range bans {
		s, el, ok := e.element(b, now)
		if !ok {
			continue
		}
		ops = append(ops, op{s, el, b.Addr.Unmap(), b.Until})
	}
	if len(ops) == 0 {
		return 0, nil
	}
	send := func(replace bool) error {
		for _, o := range ops {
			if exp, ok := e.in[o.a]; replace && ok && (exp.IsZero() || exp.After(now)) {
				if err := e.conn.SetDeleteElements(o.set, []nft.SetElement{{Key: o.el.Key}}); err != nil {
					return err
				}
				e.elements.WithLabelValues("delete").Inc()
			}
			if err := e.conn.SetAddElements(o.set, []nft.SetElement{o.el}); err != nil {
				return err
			}
			e.elements.WithLabelValues("add").Inc()
		}
		return e.flush()
	}
	err := send(true)
	if err != nil {
		// An element the mirror thought present may have expired a
		// moment ago (delete: no such element). Adding alone is right
		// then: the kernel treats an expired element as absent.
		err = send(false)
	}
	if err != nil {
		return 0, err
	}
	for _, o := range ops {
		e.in[o.a] = o.u
	}
	return len(ops), nil
}

// Unban removes addresses in one transaction. Addresses not banned (never,
// or expired) are ignored.
func (e *Enforcer) Unban(addrs ...netip.Addr) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	n := 0
	for _, a := range addrs {
		a = a.Unmap()
		exp, ok := e.in[a]
		if !ok {
			continue
		}
		delete(e.in, a)
		if !exp.IsZero() && !exp.After(now) {
			continue
		}
		s := e.set6
		if a.Is4() {
			s = e.set4
		}
		if err := e.conn.SetDeleteElements(s, []nft.SetElement{{Key: a.AsSlice()}}); err != nil {
			return fmt.Errorf("nftables: %w", err)
		}
		e.elements.WithLabelValues("delete").Inc()
		n++
	}
	if n == 0 {
		return nil
	}
	return e.flush()
}

// Sync makes the sets hold exactly bans, in one transaction: both sets are
// emptied and refilled, so packets see either the old or the new content.
// Call it at start with the store's active bans.
func (e *Enforcer) Sync(bans []Ban) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.cfg.Now()
	e.conn.FlushSet(e.set4)
	e.conn.FlushSet(e.set6)
	var v4, v6 []nft.SetElement
	in := make(map[netip.Addr]time.Time, len(bans))
	for _, b := range bans {
		s, el, ok := e.element(b, now)
		if !ok {
			continue
		}
		a := b.Addr.Unmap()
		if _, dup := in[a]; dup {
			continue // the set refuses a key twice in one batch
		}
		in[a] = b.Until
		if s == e.set4 {
			v4 = append(v4, el)
		} else {
			v6 = append(v6, el)
		}
	}
	for _, x := range []struct {
		s  *nft.Set
		el []nft.SetElement
	}{{e.set4, v4}, {e.set6, v6}} {
		if err := e.conn.SetAddElements(x.s, x.el); err != nil {
			return 0, fmt.Errorf("nftables: %w", err)
		}
	}
	if err := e.flush(); err != nil {
		return 0, err
	}
	e.elements.WithLabelValues("add").Add(float64(len(in)))
	e.in = in
	return len(in), nil
}

// Banned lists the addresses in the kernel's sets with their remaining
// time (zero: no timeout).
func (e *Enforcer) Banned() (map[netip.Addr]time.Duration, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[netip.Addr]time.Duration{}
	for _, s := range []*nft.Set{e.set4, e.set6} {
		els, err := e.conn.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("nftables: listing %s: %w", s.Name, err)
		}
		for _, el := range els {
			a, ok := netip.AddrFromSlice(el.Key)
			if !ok {
				return nil, errors.New("nftables: element with a malformed key")
			}
			out[a] = el.Expires
		}
	}
	return out, nil
}
