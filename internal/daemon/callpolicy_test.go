package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/tollguard/tollguard/internal/config"
	"github.com/tollguard/tollguard/internal/decision"
)

// Kill decisions never reach the ban set or the store: they are queued for
// the teardown; bans pass through.
func TestPolicyWrapTakesKillsOut(t *testing.T) {
	p := newPolicy(&Guard{log: slog.New(slog.DiscardHandler)})
	var got []decision.Decision
	a := p.wrap(decision.ApplierFunc(func(d decision.Decision) { got = append(got, d) }))
	a.Apply(decision.Decision{Type: decision.TypeKill, Scope: decision.ScopeAccount, Account: "1001"})
	a.Apply(decision.Decision{Type: decision.TypeBan, Scope: decision.ScopeIP})
	if len(got) != 1 || got[0].Type != decision.TypeBan {
		t.Errorf("forwarded %+v, want the ban only", got)
	}
	if len(p.kills) != 1 {
		t.Errorf("%d kills queued, want 1", len(p.kills))
	}
	for range cap(p.kills) + 5 {
		a.Apply(decision.Decision{Type: decision.TypeKill, Scope: decision.ScopeCall, CallID: "x"})
	}
	if p.dropped.Load() != 6 {
		t.Errorf("dropped %d kills on a full queue, want 6", p.dropped.Load())
	}
}

// The secrets file is written 0600 and read back; a missing file is no
// secrets, a broken one an error.
func TestTokenSecretsFile(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	if _, s, err := readPolicyInputs(cfg); err != nil || s != nil {
		t.Fatalf("no file: %v, %v", s, err)
	}
	path := filepath.Join(dir, tokensFile)
	if err := writeFile0600(path, []byte("\"1001\": JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if _, s, err := readPolicyInputs(cfg); err != nil || s["1001"] != "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" {
		t.Errorf("read back %v, %v", s, err)
	}
	if err := os.WriteFile(path, []byte("[not a map"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readPolicyInputs(cfg); err == nil {
		t.Error("a broken secrets file was accepted")
	}
	cfg.CallPolicy.Rates = filepath.Join(dir, "missing.yaml")
	if _, _, err := readPolicyInputs(cfg); err == nil {
		t.Error("a missing rates file was accepted")
	}
}
