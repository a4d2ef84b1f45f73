package store

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The PostgreSQL the tests use: TOLLGUARD_TEST_PG_DSN when set (a CI
// service), otherwise a private server started from the Debian binaries in a
// temp directory (as the postgres user when running as root) and stopped by
// TestMain.
var pg struct {
	once    sync.Once
	dsn     string // admin DSN
	err     error
	dir     string
	pgCtl   string
	asUser  []string
	counter atomic.Int64
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	code := m.Run()
	stopPostgres()
	os.Exit(code)
}

// pgBin finds a PostgreSQL server binary on PATH or in Debian's layout.
func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(m) == 0 {
		return "", fmt.Errorf("%s not found (install postgresql)", name)
	}
	return m[len(m)-1], nil
}

func startPostgres() (string, error) {
	if dsn := os.Getenv("TOLLGUARD_TEST_PG_DSN"); dsn != "" {
		return dsn, nil
	}
	initdb, err := pgBin("initdb")
	if err != nil {
		return "", err
	}
	if pg.pgCtl, err = pgBin("pg_ctl"); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tollguard-pg-")
	if err != nil {
		return "", err
	}
	pg.dir = dir
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: hand the directory to postgres.
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root without a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		pg.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	data := filepath.Join(dir, "data")
	if out, err := pgRun(initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		return "", fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off", port, dir)
	if out, err := pgRun(pg.pgCtl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return "", fmt.Errorf("pg_ctl start: %w: %s %s", err, out, log)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

func pgRun(bin string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, pg.asUser...), bin)
	argv = append(argv, args...)
	return exec.Command(argv[0], argv[1:]...).CombinedOutput()
}

func stopPostgres() {
	if pg.dir == "" {
		return
	}
	if pg.dsn != "" {
		pgRun(pg.pgCtl, "-D", filepath.Join(pg.dir, "data"), "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(pg.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// pgDatabase returns the DSN of a fresh, empty database. Without a server
// it fails the test under CI and skips it otherwise.
func pgDatabase(tb testing.TB) string {
	tb.Helper()
	pg.once.Do(func() { pg.dsn, pg.err = startPostgres() })
	if pg.err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("postgresql is required under CI: %v", pg.err)
		}
		tb.Skipf("postgresql not available: %v", pg.err)
	}
	name := fmt.Sprintf("tg_%d_%d", os.Getpid(), pg.counter.Add(1))
	admin, err := sql.Open("pgx", pg.dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("creating database: %v", err)
	}
	return withDatabase(pg.dsn, name)
}

// withDatabase replaces the database name in a postgres:// DSN.
func withDatabase(dsn, name string) string {
	i := len(dsn)
	for j := len("postgres://"); j < len(dsn); j++ {
		if dsn[j] == '/' {
			i = j
			break
		}
	}
	rest := ""
	for j := i + 1; j < len(dsn); j++ {
		if dsn[j] == '?' {
			rest = dsn[j:]
			break
		}
	}
	return dsn[:i] + "/" + name + rest
}
