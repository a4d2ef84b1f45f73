package config

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// nodeName is a node's name as the cluster and the store accept it.
var nodeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// StoreNode is the node name this guard's events carry in the store and
// whose hash chain it writes: cluster.node when set; with cluster.redis
// set and no node, the host name's first label (the cluster's own
// default); otherwise "" — a guard alone keeps the one chain it always
// had, whatever its host is called, and its database needs no rename.
func (c *Config) StoreNode() string {
	if c.Cluster.Node != "" {
		return c.Cluster.Node
	}
	if !c.Cluster.Enabled() {
		return ""
	}
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

// ParseNodeKey decodes a pinned public key (base64, standard or URL
// alphabet, padded or not).
func ParseNodeKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("an ed25519 public key is %d bytes, this is %d", ed25519.PublicKeySize, len(b))
			}
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

// validateNodes checks cluster.node (also without redis: it names the
// store's chain) and store.node_keys.
func (c *Config) validateNodes() error {
	if n := c.Cluster.Node; n != "" && !nodeName.MatchString(n) {
		return &Error{Path: "cluster.node", Msg: fmt.Sprintf("%q is not a node name", n), Hint: "1-63 letters, digits, '.', '_' or '-'"}
	}
	seen := map[string]bool{}
	for i, k := range c.Store.NodeKeys {
		p := fmt.Sprintf("store.node_keys[%d]", i)
		if k.Node != "" && !nodeName.MatchString(k.Node) {
			return &Error{Path: p + ".node", Msg: fmt.Sprintf("%q is not a node name", k.Node), Hint: "the node's cluster.node; \"\" for a guard without one"}
		}
		if seen[k.Node] {
			return &Error{Path: p + ".node", Msg: fmt.Sprintf("node %q is pinned twice", k.Node), Hint: "one key per node"}
		}
		seen[k.Node] = true
		if _, err := ParseNodeKey(k.PublicKey); err != nil {
			return &Error{Path: p + ".public_key", Msg: err.Error(), Hint: "the base64 key `tollguard log verify` prints for the node"}
		}
	}
	return nil
}
