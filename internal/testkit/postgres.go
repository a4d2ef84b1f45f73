package testkit

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Postgres is a PostgreSQL server a test started from the Debian binaries
// in a temporary directory, listening on 127.0.0.1 with trust
// authentication, stopped when the test ends.
type Postgres struct {
	// Addr is host:port of the server.
	Addr string
	// admin is TOLLGUARD_TEST_PG_DSN when set: a server the test did not
	// start (a CI service).
	admin  string
	pgCtl  string
	dir    string
	data   string
	asUser []string
	dbs    atomic.Int64
}

// StartPostgres starts a private server for t (as the postgres user when
// the test runs as root: initdb refuses root), or uses the server of
// TOLLGUARD_TEST_PG_DSN when set, and stops it when t ends. Without the
// binaries it fails the test when CI is set and skips it otherwise.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p, err := RunPostgres()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("postgresql is required under CI: %v", err)
		}
		t.Skipf("postgresql not available: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// RunPostgres is StartPostgres for a caller without a test (a TestMain
// sharing one server between tests): it returns the error instead of
// failing, and the caller calls Stop.
func RunPostgres() (*Postgres, error) {
	if dsn := os.Getenv("TOLLGUARD_TEST_PG_DSN"); dsn != "" {
		return &Postgres{admin: dsn}, nil
	}
	initdb, err := pgBin("initdb")
	if err != nil {
		return nil, err
	}
	p := &Postgres{}
	if p.pgCtl, err = pgBin("pg_ctl"); err != nil {
		return nil, err
	}
	if p.dir, err = os.MkdirTemp("", "tollguard-pg-"); err != nil {
		return nil, err
	}
	if err := p.start(initdb); err != nil {
		os.RemoveAll(p.dir)
		return nil, err
	}
	return p, nil
}

func (p *Postgres) start(initdb string) error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root without a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(p.dir, uid, gid); err != nil {
			return err
		}
		p.asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	p.data = filepath.Join(p.dir, "data")
	if out, err := p.run(initdb, "-D", p.data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off", port, p.dir)
	if out, err := p.run(p.pgCtl, "-D", p.data, "-o", opts, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		return fmt.Errorf("pg_ctl start: %w: %s %s", err, out, log)
	}
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	return nil
}

// Stop stops a server RunPostgres started and removes its files; it does
// nothing for the server of TOLLGUARD_TEST_PG_DSN.
func (p *Postgres) Stop() {
	if p.dir == "" {
		return
	}
	if p.Addr != "" {
		p.run(p.pgCtl, "-D", p.data, "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(p.dir)
	p.dir = ""
}

// Database creates a new, empty database and returns its DSN.
func (p *Postgres) Database(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("tg_%d_%d", os.Getpid(), p.dbs.Add(1))
	admin, err := sql.Open("pgx", p.dsn(""))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	return p.dsn(name)
}

// dsn is the DSN of database db ("": the admin database).
func (p *Postgres) dsn(db string) string {
	if p.admin != "" {
		if db == "" {
			return p.admin
		}
		u, err := url.Parse(p.admin)
		if err != nil {
			return p.admin
		}
		u.Path = "/" + db
		return u.String()
	}
	if db == "" {
		db = "postgres"
	}
	return "postgres://postgres@" + p.Addr + "/" + db + "?sslmode=disable"
}

func (p *Postgres) run(bin string, args ...string) ([]byte, error) {
	argv := append(append([]string{}, p.asUser...), bin)
	argv = append(argv, args...)
	return exec.Command(argv[0], argv[1:]...).CombinedOutput()
}

// pgBin finds a PostgreSQL server binary on PATH or in Debian's layout
// (/usr/lib/postgresql/VERSION/bin, the newest version).
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
