package config

import (
	"strconv"
	"strings"

	"github.com/tollguard/tollguard/internal/cluster"
	"github.com/tollguard/tollguard/internal/intel"
)

// Cluster shares bans (and failure counts) with the other guard nodes over
// Redis; its keys are cluster.Config's (see internal/cluster). An empty
// redis URL leaves this node alone.
type Cluster struct {
	cluster.Config `yaml:",inline"`
	// ShareFailures publishes this node's authentication failures to the
	// other nodes and counts theirs here, so a guess spread over the nodes
	// adds up in every node's jail and distributed rule. Default true;
	// it does nothing without redis.
	ShareFailures bool `yaml:"share_failures"`
	// ShareCalls makes the call policy's per-account limits
	// (calls_per_minute, calls_per_day, concurrent, spend_per_hour,
	// spend_per_day) hold across the nodes: each node's counted calls,
	// costs and running calls are shared. Default true; it does nothing
	// without redis.
	ShareCalls bool `yaml:"share_calls"`
	// StreamQueue bounds the failures and the call-counter changes this
	// node keeps, per stream, while Redis is down; they are sent with
	// their own times when it is back, and the oldest are dropped (and
	// counted) beyond it. Default 4096.
	StreamQueue int `yaml:"stream_queue"`
}

// Intel configures threat-intelligence feeds (in) and the ban feeds this
// node serves (out); the feed keys are intel.Config's (see internal/intel).
type Intel struct {
	intel.Config `yaml:",inline"`
	// Export configures the feeds of this node's bans.
	Export IntelExport `yaml:"export"`
}

// IntelExport configures /api/v1/intel/bans.{txt,json} (admin token) and
// the CrowdSec decision stream under /crowdsec/ (bouncer keys).
type IntelExport struct {
	// BouncerKeys are the API keys CrowdSec bouncers send (X-Api-Key), at
	// least 16 characters each. Keys may also be kept one per line in
	// <data_dir>/bouncer_keys (mode 0600). Default none: the stream
	// refuses every request.
	BouncerKeys []string `yaml:"bouncer_keys"`
	// ProvenOnly shares only bans of sources whose address was proven (a
	// completed handshake), so a forged datagram cannot get an address
	// banned on other organisations' firewalls. Default true.
	ProvenOnly bool `yaml:"proven_only"`
	// IncludeInternal shares bans of private and loopback addresses too.
	// Default false.
	IncludeInternal bool `yaml:"include_internal"`
	// IncludeFeeds re-shares bans that came from intel feeds. Default
	// false.
	IncludeFeeds bool `yaml:"include_feeds"`
}

func defaultCluster() Cluster {
	return Cluster{Config: cluster.Config{KeyPrefix: cluster.DefaultKeyPrefix, PendingMax: cluster.DefaultPendingMax,
		MaxRemoteBans: cluster.DefaultMaxRemote}, ShareFailures: true, ShareCalls: true, StreamQueue: 4096}
}

func defaultIntel() Intel {
	d := intel.Config{}.WithDefaults()
	return Intel{Config: intel.Config{MinPrefixV4: d.MinPrefixV4, MinPrefixV6: d.MinPrefixV6},
		Export: IntelExport{ProvenOnly: true}}
}

// validate checks the cluster section.
func (c Cluster) validate() error {
	if err := c.Config.Validate(); err != nil {
		return pathError("cluster", err, "see the cluster section of examples/tollguard.yaml")
	}
	if c.StreamQueue < 1 || c.StreamQueue > 1<<20 {
		return &Error{Path: "cluster.stream_queue", Msg: "must be between 1 and 1048576", Hint: "default 4096"}
	}
	return nil
}

// validate checks the intel section with the feeds' defaults applied.
func (in Intel) validate() error {
	if err := in.Config.WithDefaults().Validate(); err != nil {
		return pathError("intel", err, "see the intel section of examples/tollguard.yaml")
	}
	for i, k := range in.Export.BouncerKeys {
		if len(k) < 16 {
			return &Error{Path: "intel.export.bouncer_keys[" + strconv.Itoa(i) + "]", Msg: "a bouncer key must be at least 16 characters",
				Hint: "e.g. the output of `openssl rand -hex 24`"}
		}
	}
	return nil
}

// pathError turns a package's "section.key …: message" error into an
// *Error whose Path is the key, so Parse can name the line.
func pathError(section string, err error, hint string) error {
	msg := strings.TrimPrefix(err.Error(), section+": ")
	path := section
	if strings.HasPrefix(msg, section+".") || strings.HasPrefix(msg, section+"[") {
		end := strings.IndexAny(msg, " :")
		if end < 0 {
			end = len(msg)
		}
		path = strings.TrimRight(msg[:end], ",")
		msg = strings.TrimSpace(strings.TrimPrefix(msg[end:], ":"))
	}
	return &Error{Path: path, Msg: msg, Hint: hint}
}
