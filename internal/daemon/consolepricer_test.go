package daemon

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollguard/tollguard/internal/config"
)

// The loss page prices connected calls from the current rate table, read
// again when the file changes; without one it has no pricer.
func TestConsolePricer(t *testing.T) {
	g := &Guard{log: slog.New(slog.DiscardHandler)}
	cfg := config.Default()
	g.cfg.Store(cfg)
	p := &consolePricer{g: g}
	if p.get() != nil {
		t.Fatal("a pricer without call_policy.rates")
	}
	path := filepath.Join(t.TempDir(), "rates.yaml")
	if err := os.WriteFile(path, []byte("currency: USD\nrates:\n  - {prefix: \"+882\", per_minute: 2.50, increment: 60}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg2 := *cfg
	cfg2.CallPolicy.Rates = path
	g.cfg.Store(&cfg2)
	price := p.get()
	if price == nil {
		t.Fatal("no pricer with a rate table")
	}
	if amt, cur, ok := price("+88216123456", 90*time.Second); !ok || amt.String() != "5.00" || cur != "USD" {
		t.Errorf("+882 for 90s: %s %s %v, want 5.00 USD", amt, cur, ok)
	}
	if _, _, ok := price("+4420123456", time.Minute); ok {
		t.Error("an unpriced destination was priced")
	}
	if _, _, ok := price("not a number", time.Minute); ok {
		t.Error("a non-number was priced")
	}
	if err := os.WriteFile(path, []byte("currency: EUR\nrates:\n  - {prefix: \"+44\", per_minute: 0.10, increment: 60}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if amt, cur, ok := p.get()("+4420123456", time.Minute); !ok || amt.String() != "0.10" || cur != "EUR" {
		t.Errorf("after the file changed: %s %s %v, want 0.10 EUR", amt, cur, ok)
	}
	if err := os.WriteFile(path, []byte("[broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p.get() != nil {
		t.Error("a pricer from a broken rate table")
	}
}
