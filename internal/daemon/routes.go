package daemon

import (
	"net"
	"net/netip"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
	"github.com/tollguard/tollguard/internal/sipfw"
)

// sipRoutes maps sip.routes to the proxy's routes.
func sipRoutes(cfg *config.Config) []sipfw.Route {
	var out []sipfw.Route
	for _, r := range cfg.SIP.Routes {
		out = append(out, sipfw.Route{Name: r.Name, Listen: r.Listen, Upstream: r.Upstream,
			AllowSources: config.Prefixes(r.AllowSources), DenySources: config.Prefixes(r.DenySources)})
	}
	return out
}

// sipEnabled reports whether the config runs the inline proxy.
func sipEnabled(cfg *config.Config) bool { return len(cfg.SIP.Listen) > 0 || len(cfg.SIP.Routes) > 0 }

// upstreamHosts are the hosts of every route's upstream: the PBX is never
// banned, whatever passes through it.
func upstreamHosts(cfg *config.Config) []netip.Prefix {
	ups := make([]string, 0, 1+len(cfg.SIP.Routes))
	if cfg.SIP.Upstream != "" {
		ups = append(ups, cfg.SIP.Upstream)
	}
	for _, r := range cfg.SIP.Routes {
		ups = append(ups, r.Upstream)
	}
	var out []netip.Prefix
	for _, s := range ups {
		u, err := config.ParseSIPURL(s, "udp", "tcp") // validated
		if err != nil {
			continue
		}
		host, _, _ := net.SplitHostPort(u.Host)
		if a, err := netip.ParseAddr(host); err == nil {
			out = append(out, decision.HostPrefix(a))
		}
	}
	return out
}

// defaultUpstream is sip.upstream when sip.listen uses it, else empty:
// without listeners there is no default route.
func defaultUpstream(cfg *config.Config) string {
	if len(cfg.SIP.Listen) == 0 {
		return ""
	}
	return cfg.SIP.Upstream
}
