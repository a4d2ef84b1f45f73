package config

import (
	"os"
	"strings"
	"testing"
)

func TestStoreNode(t *testing.T) {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	tests := []struct {
		name, redis, node, want string
	}{
		{"alone", "", "", ""},
		{"named without redis", "", "pbx-2", "pbx-2"},
		{"cluster named", "redis://127.0.0.1:6379", "pbx-1", "pbx-1"},
		{"cluster default", "redis://127.0.0.1:6379", "", host},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Cluster.Redis, c.Cluster.Node = tt.redis, tt.node
			if got := c.StoreNode(); got != tt.want {
				t.Errorf("StoreNode() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNodeKeysValidate(t *testing.T) {
	const key = "8Ki0RtmdajOZYg8ftxHo4EIN05Yl/4W4F0m794JMShY="
	tests := []struct {
		name string
		yaml string
		want string // "" = valid
	}{
		{"pinned", "store:\n  node_keys:\n    - {node: a, public_key: \"" + key + "\"}\n    - {node: \"\", public_key: \"" + key + "\"}\n", ""},
		{"url alphabet unpadded", "store:\n  node_keys:\n    - {node: a, public_key: \"" + strings.NewReplacer("/", "_", "=", "").Replace(key) + "\"}\n", ""},
		{"twice", "store:\n  node_keys:\n    - {node: a, public_key: \"" + key + "\"}\n    - {node: a, public_key: \"" + key + "\"}\n", "pinned twice"},
		{"short key", "store:\n  node_keys:\n    - {node: a, public_key: \"AAAA\"}\n", "32 bytes"},
		{"not base64", "store:\n  node_keys:\n    - {node: a, public_key: \"not a key!\"}\n", "not base64"},
		{"bad node", "store:\n  node_keys:\n    - {node: \"../etc\", public_key: \"" + key + "\"}\n", "not a node name"},
		{"bad cluster node without redis", "cluster:\n  node: \"a b\"\n", "cluster.node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}
