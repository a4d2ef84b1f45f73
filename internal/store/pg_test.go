package store

import (
	"os"
	"sync"
	"testing"

	"github.com/tollguard/tollguard/internal/testkit"
)

// The PostgreSQL the tests use: TOLLGUARD_TEST_PG_DSN when set (a CI
// service), otherwise one private server (testkit.RunPostgres) started by
// the first test that needs it and stopped by TestMain.
var pg struct {
	once sync.Once
	srv  *testkit.Postgres
	err  error
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	code := m.Run()
	if pg.srv != nil {
		pg.srv.Stop()
	}
	os.Exit(code)
}

// pgDatabase returns the DSN of a fresh, empty database. Without a server
// it fails the test under CI and skips it otherwise.
func pgDatabase(tb testing.TB) string {
	tb.Helper()
	pg.once.Do(func() { pg.srv, pg.err = testkit.RunPostgres() })
	if pg.err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("postgresql is required under CI: %v", pg.err)
		}
		tb.Skipf("postgresql not available: %v", pg.err)
	}
	return pg.srv.Database(tb)
}
