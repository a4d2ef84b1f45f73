package daemon

import (
	"context"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"syscall"

	"github.com/tollguard/tollguard/internal/config"
)

// watchReload reloads the config file on SIGHUP. A file that fails to load
// or validate changes nothing. Rules, allow/deny lists and fingerprints take
// effect at once; listener, upstream, store and admin changes need a restart
// and are reported as such.
func (g *Guard) watchReload(ctx context.Context) {
	if g.path == "" {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			g.reload()
		}
	}
}

func (g *Guard) reload() {
	cfg, err := config.Load(g.path)
	if err != nil {
		g.log.Error("reload refused: config kept as it was", "err", err)
		return
	}
	fp, err := readFingerprints(cfg)
	if err != nil {
		g.log.Error("reload refused: config kept as it was", "err", err)
		return
	}
	rates, secrets, err := readPolicyInputs(cfg)
	if err != nil {
		g.log.Error("reload refused: config kept as it was", "err", err)
		return
	}
	alertsChanged, err := g.alerts.prepare(cfg)
	if err != nil {
		g.log.Error("reload refused: config kept as it was", "err", err)
		return
	}
	if err := g.eng.ReloadAll(cfg, fp, rates, secrets); err != nil {
		g.log.Error("reload refused: config kept as it was", "err", err)
		return
	}
	old := g.cfg.Swap(cfg)
	l := g.buildLists(cfg)
	g.lists.Store(l)
	g.eng.SetLists(l)
	if alertsChanged {
		g.alerts.reload(cfg)
	}
	if restartNeeded(old, cfg) {
		g.log.Warn("config reloaded; sip, admin, store, data_dir, freeswitch, nftables, sources, log file, cluster or intel changes take effect after a restart")
		return
	}
	g.log.Info("config reloaded", "file", g.path)
}

func restartNeeded(a, b *config.Config) bool {
	return a.DataDir != b.DataDir || a.Admin != b.Admin || !reflect.DeepEqual(a.Store, b.Store) || !reflect.DeepEqual(a.SIP, b.SIP) ||
		a.FreeSWITCH != b.FreeSWITCH || a.NFTables != b.NFTables || !slices.Equal(a.Sources, b.Sources) || a.Log.Fail2banFile != b.Log.Fail2banFile ||
		!reflect.DeepEqual(a.Cluster, b.Cluster) || !reflect.DeepEqual(a.Intel, b.Intel)
}
