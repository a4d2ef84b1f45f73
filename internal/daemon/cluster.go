package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tollguard/tollguard/internal/cluster"
	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/decision/screen"
	"github.com/tollguard/tollguard/internal/engine/callpolicy"
	"github.com/tollguard/tollguard/internal/intel"
)

// crowdsecPrefix is where the CrowdSec decision stream is served on the
// admin listener: bouncers take http://ADMIN/crowdsec/ as their api_url.
const crowdsecPrefix = "/crowdsec"

// bouncerKeysFile holds extra bouncer keys in data_dir, one per line.
const bouncerKeysFile = "bouncer_keys"

// shared holds the parts that connect this guard to others: the cluster
// node (bans over Redis), the failure stream, the intel feeds and the ban
// export. Each is nil when not configured.
type shared struct {
	node   *cluster.Node
	fails  *failureShare
	calls  *callShare
	feeds  *intel.Intel
	export *intel.Export
}

// openShared builds the cluster node, the failure stream, the feeds and
// the export from cfg. Nothing connects until runShared.
func (g *Guard) openShared(cfg *config.Config) error {
	log := g.log
	if cfg.Cluster.Enabled() {
		node, err := cluster.New(cluster.Options{
			Config: cfg.Cluster.Config, Apply: decision.ApplierFunc(g.applyReceived),
			Screen: func(d decision.Decision) error {
				return screen.New(config.Prefixes(g.config().Allow), g.lists.Load().Allowed).Check(d)
			},
			Local:  func() []decision.Decision { return g.set.List(g.now()) },
			Logger: log, Registry: g.reg, Now: g.now,
		})
		if err != nil {
			return err
		}
		g.shr.node = node
		if cfg.Cluster.ShareFailures {
			if g.shr.fails, err = newFailureShare(g, cfg); err != nil {
				node.Close()
				return err
			}
		}
		if cfg.Cluster.ShareCalls {
			if g.shr.calls, err = newCallShare(g, cfg); err != nil {
				return errors.Join(err, g.closeShared())
			}
		}
	}
	if len(cfg.Intel.Feeds) > 0 {
		in, err := intel.New(intel.Options{
			Config: cfg.Intel.Config, Apply: intel.OnlyOwn(g.set, g.now),
			Allow: config.Prefixes(cfg.Allow), Allowed: func(a netip.Addr) bool { return g.lists.Load().Allowed(a) },
			Logger: log, Registry: g.reg, Now: g.now,
		})
		if err != nil {
			return errors.Join(err, g.closeShared())
		}
		g.shr.feeds = in
	}
	keys, err := bouncerKeys(cfg)
	if err != nil {
		return errors.Join(err, g.closeShared())
	}
	ex := cfg.Intel.Export
	eo := intel.ExportOptions{Bans: g.set.List, APIKeys: keys, IncludeInternal: ex.IncludeInternal,
		IncludeFeeds: ex.IncludeFeeds, Now: g.now, Logger: log, Registry: g.reg}
	if ex.ProvenOnly {
		eo.Proven = func(d decision.Decision) bool { return !d.Unproven }
	}
	if g.shr.export, err = intel.NewExport(eo); err != nil {
		return errors.Join(err, g.closeShared())
	}
	return nil
}

// closeShared closes the Redis clients (after runShared returned, or when
// New fails).
func (g *Guard) closeShared() error {
	var err error
	if g.shr.node != nil {
		err = g.shr.node.Close()
	}
	if g.shr.fails != nil {
		err = errors.Join(err, g.shr.fails.stream.Close())
	}
	if g.shr.calls != nil {
		err = errors.Join(err, g.shr.calls.stream.Close())
	}
	return err
}

// shareDecisions adds the cluster node to the engine's fan-out: the node
// publishes what this guard decides (never what it received, never feed
// bans: cluster.Node.Apply filters them).
func (g *Guard) shareDecisions(apply decision.Fanout) decision.Fanout {
	if g.shr.node != nil {
		apply = append(apply, g.shr.node)
	}
	return apply
}

// shareFailures wraps the recorder so this node's authentication failures
// are published to the others (cluster.share_failures).
func (g *Guard) shareFailures(rec recordFunc) recordFunc {
	if g.shr.fails != nil {
		return g.shr.fails.record(rec)
	}
	return rec
}

// shareCalls returns the sink of the call policy's counter changes
// (cluster.share_calls), nil when alone.
func (g *Guard) shareCalls() func(callpolicy.Event) {
	if g.shr.calls != nil {
		return g.shr.calls.share
	}
	return nil
}

// clusterNote is the cluster line of `tollguard bans`: empty when alone.
func (g *Guard) clusterNote() string {
	if g.shr.node == nil {
		return ""
	}
	st := g.shr.node.Status()
	queued := ""
	if g.shr.fails != nil {
		queued += fmt.Sprintf(", %d failures", g.shr.fails.stream.Queued())
	}
	if g.shr.calls != nil {
		queued += fmt.Sprintf(", %d call counts", g.shr.calls.stream.Queued())
	}
	if st.Connected {
		return fmt.Sprintf("node %s, connected to Redis since %s, %d decisions%s pending", st.Node, st.Since.Format(time.RFC3339), st.Pending, queued)
	}
	note := fmt.Sprintf("node %s, NOT connected to Redis since %s (banning and counting alone), %d decisions%s pending", st.Node, st.Since.Format(time.RFC3339), st.Pending, queued)
	if st.LastError != "" {
		note += ": " + st.LastError
	}
	return note
}

// shareOperator hands an operator's ban or unban to the cluster.
func (g *Guard) shareOperator(d decision.Decision) {
	if g.shr.node != nil {
		g.shr.node.Apply(d)
	}
}

// applyReceived applies a ban or unban another node made: the ban set (so
// the next packet is dropped), the store (so a restart keeps it), the
// kernel only for a proven source (a forged datagram elsewhere must not
// reach this host's firewall). The cluster has already screened it
// against allow. An unban also clears the engine's counters for it.
func (g *Guard) applyReceived(d decision.Decision) {
	g.set.Apply(d)
	g.pers.Apply(d)
	if g.kern != nil {
		provenOnly{g.kern}.Apply(d)
	}
	if d.Type == decision.TypeUnban {
		if g.eng != nil {
			g.eng.Forget(d.Prefix.Addr(), d.Account)
		}
		g.log.Info("unban from the cluster", "component", "cluster", "scope", string(d.Scope), "target", d.Target(), "by", d.Origin)
		return
	}
	g.log.Info("ban from the cluster", "component", "cluster", "scope", string(d.Scope), "target", d.Target(),
		"rule", d.Rule, "by", d.Origin, "until", d.Until)
}

// runShared starts the cluster link, the failure stream and the feeds
// under grp; the Redis clients are closed when they have stopped.
func (g *Guard) runShared(ctx context.Context, grp *errgroup.Group) {
	if g.shr.node == nil && g.shr.feeds == nil {
		return
	}
	grp.Go(func() error {
		var wg errgroup.Group
		if g.shr.node != nil {
			wg.Go(func() error { return g.shr.node.Run(ctx) })
		}
		if g.shr.fails != nil {
			wg.Go(func() error { g.shr.fails.run(ctx); return nil })
		}
		if g.shr.calls != nil {
			wg.Go(func() error { g.shr.calls.run(ctx); return nil })
		}
		if g.shr.feeds != nil {
			wg.Go(func() error { return g.shr.feeds.Run(ctx) })
		}
		err := wg.Wait()
		return errors.Join(err, g.closeShared())
	})
}

// mountShared serves the ban feeds on the admin API: the plain and JSON
// lists under the admin token, the CrowdSec stream and live API under
// /crowdsec/ with the bouncer keys (intel.Export checks them).
func (g *Guard) mountShared() {
	ex := g.shr.export
	g.api.Mount("GET /api/v1/intel/bans.txt", ex.PlainHandler().ServeHTTP)
	g.api.Mount("GET /api/v1/intel/bans.json", ex.JSONHandler().ServeHTTP)
	pub := http.NewServeMux()
	pub.Handle("GET "+crowdsecPrefix+intel.StreamPath, http.StripPrefix(crowdsecPrefix, ex.StreamHandler()))
	pub.Handle("GET "+crowdsecPrefix+intel.LivePath, http.StripPrefix(crowdsecPrefix, ex.LiveHandler()))
	g.api.MountPublic(crowdsecPrefix+"/", pub)
}

// bouncerKeys returns intel.export.bouncer_keys and the keys in
// <data_dir>/bouncer_keys (one per line, '#' comments), which is refused
// when group or others may read it.
func bouncerKeys(cfg *config.Config) ([]string, error) {
	keys := append([]string(nil), cfg.Intel.Export.BouncerKeys...)
	path := filepath.Join(cfg.DataDir, bouncerKeysFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return keys, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading bouncer keys: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading bouncer keys: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("bouncer keys %s have mode %04o, group or others may read them: run `chmod 600 %s`", path, perm, path)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading bouncer keys: %w", err)
	}
	return keys, nil
}
