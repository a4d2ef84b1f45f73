package config

import (
	"strings"
	"testing"
	"time"
)

// TestClusterIntelParse loads cluster and intel sections from YAML: good
// ones keep their values (durations as Go durations), bad ones name the
// file, the line and the key.
func TestClusterIntelParse(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       string // substring of the error; empty = valid
	}{
		{"cluster on", "cluster:\n  redis: redis://127.0.0.1:6379/0\n  node: a1\n", ""},
		{"feed", "intel:\n  feeds:\n    - name: drop\n      url: /var/lib/drop.txt\n      format: cidr\n      refresh: 30m\n", ""},
		{"bad url", "cluster:\n  redis: http://x\n  node: a\n", "t.yaml:2: cluster.redis:"},
		{"bad node", "cluster:\n  redis: redis://127.0.0.1:6379\n  node: \"a b\"\n", "t.yaml:3: cluster.node:"},
		{"unknown key", "cluster:\n  redis: \"\"\n  nodes: a\n", `t.yaml:3: unknown key "nodes"`},
		{"bad format", "intel:\n  feeds:\n    - name: drop\n      url: /x\n      format: xml\n", "t.yaml:3: intel.feeds[0]: format"},
		{"floor", "intel:\n  min_prefix_v4: 4\n", "t.yaml:2: intel.min_prefix_v4:"},
		{"short key", "intel:\n  export:\n    bouncer_keys: [short]\n", "t.yaml:3: intel.export.bouncer_keys[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Parse = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	c, err := Parse("t.yaml", []byte("cluster:\n  redis: redis://127.0.0.1:6379/0\n  node: a1\n  share_failures: false\nintel:\n  feeds:\n    - {name: drop, url: /x, format: cidr, refresh: 30m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Node != "a1" || c.Cluster.ShareFailures || c.Cluster.KeyPrefix != "tollguard" {
		t.Errorf("cluster = %+v", c.Cluster)
	}
	if len(c.Intel.Feeds) != 1 || c.Intel.Feeds[0].Refresh != 30*time.Minute || !c.Intel.Export.ProvenOnly {
		t.Errorf("intel = %+v", c.Intel)
	}
}
