package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/engine"
	"github.com/tollguard/tollguard/internal/event"
	"github.com/tollguard/tollguard/internal/freeswitch"
	"github.com/tollguard/tollguard/internal/logsource"
	"github.com/tollguard/tollguard/internal/source"
	"github.com/tollguard/tollguard/internal/teardown"
)

// sourceQueue is how many sidecar events wait for the engine. When it is
// full the sources block: the Event Socket pushes back on FreeSWITCH through
// TCP and the log followers stop reading, so nothing is lost.
const sourceQueue = 1024

// namedSource is one configured event source and the name it is supervised
// and counted under (a fixed word from the config, never attacker text).
type namedSource struct {
	name string
	s    source.Streamer
}

// buildSources builds the sidecar sources of cfg: the FreeSWITCH Event
// Socket (freeswitch.esl) and the followed log files (sources), each with
// its state in data_dir. It returns the Event Socket source too (nil
// without freeswitch.esl): its connection also carries the teardowns.
func (g *Guard) buildSources(cfg *config.Config) ([]namedSource, *freeswitch.Source, error) {
	var out []namedSource
	var esl *freeswitch.Source
	if cfg.FreeSWITCH.ESL != "" {
		pw, err := eslPassword(cfg.FreeSWITCH)
		if err != nil {
			return nil, nil, err
		}
		esl, err = freeswitch.New(freeswitch.Config{Addr: cfg.FreeSWITCH.ESL, Password: pw, Logger: g.log, Registry: g.reg})
		if err != nil {
			return nil, nil, fmt.Errorf("building event socket source: %w", err)
		}
		out = append(out, namedSource{"esl", esl})
	}
	if len(cfg.Sources) > 0 {
		m := logsource.NewMetrics()
		if err := m.Register(g.reg); err != nil {
			return nil, nil, err
		}
		for i, s := range cfg.Sources {
			f, err := logsource.New(logsource.Config{Type: s.Type, Path: s.Path, StateDir: cfg.DataDir, Now: g.now, Logger: g.log, Metrics: m})
			if err != nil {
				return nil, nil, fmt.Errorf("sources[%d]: %w", i, err)
			}
			out = append(out, namedSource{s.Type, f})
		}
	}
	return out, esl, nil
}

// eslPassword returns freeswitch.password, or the first line of
// freeswitch.password_file. Like admin.token, a password file that group
// or others may read is refused rather than used: the Event Socket can
// originate calls.
func eslPassword(c config.FreeSWITCH) (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	fi, err := os.Stat(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading freeswitch.password_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("freeswitch.password_file %s is not a regular file", c.PasswordFile)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("freeswitch.password_file %s has mode %04o, group or others may read it: run `chmod 600 %s`",
			c.PasswordFile, perm, c.PasswordFile)
	}
	f, err := os.Open(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading freeswitch.password_file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("freeswitch.password_file %s is empty", c.PasswordFile)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("freeswitch.password_file %s is empty", c.PasswordFile)
	}
	return pw, nil
}

// eslHost is the Event Socket's address when it is an IP: FreeSWITCH
// itself, which is never banned.
func eslHost(c config.FreeSWITCH) netip.Prefix {
	host, _, err := net.SplitHostPort(c.ESL)
	if err != nil {
		return netip.Prefix{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	return decision.HostPrefix(a)
}

// runSources runs every sidecar source under the one supervisor (restart
// with backoff) and hands their events to the engine, one at a time, in
// the order they arrive.
func (g *Guard) runSources(ctx context.Context) error {
	if len(g.sources) == 0 {
		return nil
	}
	restarts, err := source.NewRestarts(g.reg)
	if err != nil {
		return err
	}
	events := make(chan event.Event, sourceQueue)
	grp, gctx := errgroup.WithContext(ctx)
	for _, s := range g.sources {
		sv := &source.Supervisor{Name: s.name, Logger: g.log, Restarts: restarts, Min: g.backoff}
		grp.Go(func() error {
			if err := sv.Run(gctx, s.s, events); !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		})
	}
	grp.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case ev := <-events:
				g.judge(gctx, ev)
			}
		}
	})
	return grp.Wait()
}

// judge takes one sidecar event through the inline path: Admit for its
// source (a banned, denied or flooding source is refused as the proxy's
// read filter would refuse its datagram), then the recorder (engine and
// store). A call the verdict refuses is already up in FreeSWITCH, so it is
// ended through the Event Socket.
func (g *Guard) judge(ctx context.Context, ev event.Event) {
	if g.calls != nil {
		g.calls.observe(ev)
	}
	m := ev.Base()
	v := g.eng.Admit(m.Source.Addr(), g.now())
	if v.Action == engine.Pass {
		v = g.check.Check(ctx, ev)
	}
	if ca, ok := ev.(*event.CallAttempt); ok && v.Action != engine.Pass && g.esl != nil {
		select {
		case g.killing <- struct{}{}:
			go func() {
				defer func() { <-g.killing }()
				g.killRefused(ca, v)
			}()
		default:
			g.log.Warn("too many refused calls being ended at once: call left to FreeSWITCH", "component", "sidecar", "call", ca.CallID)
		}
	}
}

// maxKilling bounds the refused calls being ended at once (each waits for
// FreeSWITCH's answer).
const maxKilling = 64

// killRefused ends a call the engine refused after FreeSWITCH let it in.
func (g *Guard) killRefused(ca *event.CallAttempt, v engine.Verdict) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Kill(ctx, g.esl, KillScope{CallID: ca.CallID})
	lg := g.log.With("component", "sidecar", "call", ca.CallID, "source", ca.Source.Addr().String(), "rule", v.Rule)
	if err != nil {
		lg.Warn("refused call not ended", "err", err)
		return
	}
	lg.Info("refused call ended")
}

// Teardown returns what ends running calls in this daemon's placement: the
// inline proxy (BYE to both sides), else the Event Socket (uuid_kill,
// hupall); nil when neither runs.
func (g *Guard) Teardown() teardown.Teardown {
	td, _, _ := g.callControl()
	return td
}

// KillScope names the calls a kill ends: exactly one of one call (CallID:
// the channel UUID for FreeSWITCH, the Call-ID inline), every call from an
// address, or every call of an account.
type KillScope struct {
	CallID  string
	Addr    netip.Addr
	Account string
}

// Kill ends the calls scope names through td: the dispatch from a kill
// decision (call policy, lockdown, an operator) to the placement's
// teardown. It returns how many calls td tried to end (-1 when it cannot
// tell, as FreeSWITCH's hupall). A scope naming nothing or more than one
// thing is refused: an empty match would end every call.
func Kill(ctx context.Context, td teardown.Teardown, s KillScope) (int, error) {
	if td == nil {
		return 0, errors.New("kill: no teardown in this placement (no inline proxy, no event socket)")
	}
	n := 0
	for _, set := range []bool{s.CallID != "", s.Addr.IsValid(), s.Account != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return 0, fmt.Errorf("kill: the scope must name exactly one call, address or account (got %d)", n)
	}
	switch {
	case s.CallID != "":
		if err := td.HangupCall(ctx, s.CallID); err != nil {
			return 0, fmt.Errorf("kill call: %w", err)
		}
		return 1, nil
	case s.Addr.IsValid():
		c, err := td.HangupSource(ctx, s.Addr)
		if err != nil {
			return c, fmt.Errorf("kill calls from %s: %w", s.Addr, err)
		}
		return c, nil
	default:
		c, err := td.HangupAccount(ctx, s.Account)
		if err != nil {
			return c, fmt.Errorf("kill calls of account: %w", err)
		}
		return c, nil
	}
}

// sidecarLog names the sources at start.
func sidecarLog(log *slog.Logger, srcs []namedSource) {
	if len(srcs) == 0 {
		return
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	log.Info("sidecar sources", "sources", names)
}
