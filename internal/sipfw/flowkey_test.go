package sipfw

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadOrCreateFlowKey: the key is created 0600 once and reused, so
// Paths stored by the PBX survive a restart; a key others may read, or a
// damaged one, is refused.
func TestLoadOrCreateFlowKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, err := LoadOrCreateFlowKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, FlowKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 || len(k1) != FlowKeyLen {
		t.Fatalf("key file %v mode %v, key %d bytes", err, st.Mode().Perm(), len(k1))
	}
	k2, err := LoadOrCreateFlowKey(dir)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second load: %v, same key %v", err, bytes.Equal(k1, k2))
	}
	for _, tc := range []struct {
		name string
		prep func(path string)
		want string
	}{
		{"readable by others", func(p string) { _ = os.Chmod(p, 0o644) }, "group or others may read it"},
		{"too short", func(p string) { _ = os.WriteFile(p, []byte("short"), 0o600) }, "holds 5 bytes"},
		{"a directory", func(p string) { _ = os.Remove(p); _ = os.Mkdir(p, 0o700) }, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if _, err := LoadOrCreateFlowKey(d); err != nil {
				t.Fatal(err)
			}
			tc.prep(filepath.Join(d, FlowKeyFile))
			_, err := LoadOrCreateFlowKey(d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestFlowKeyTokensSurviveRestart: a token minted by one proxy verifies in
// the next one built with the same key, and not in one with a fresh key.
func TestFlowKeyTokensSurviveRestart(t *testing.T) {
	key, err := LoadOrCreateFlowKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ls := []*listener{{idx: 0, network: "udp"}}
	f := flow{lis: ls[0], remote: mustAP("203.0.113.5:5060")}
	tok := newFlowCodec(key).encode(f)
	if got, ok := newFlowCodec(key).decode(tok, ls); !ok || got.remote != f.remote {
		t.Error("token from the previous process refused")
	}
	fresh, _ := randomFlowKey()
	if _, ok := newFlowCodec(fresh).decode(tok, ls); ok {
		t.Error("token accepted under another key")
	}
}
