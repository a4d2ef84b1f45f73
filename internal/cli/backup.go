package cli

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/tollguard/tollguard/internal/api"
)

// runBackup is `tollguard backup FILE`: the running daemon writes a
// consistent copy of its SQLite store to FILE (VACUUM INTO). FILE is on the
// daemon's host and must not exist. For the postgres driver use pg_dump.
func runBackup(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	cf := addClientFlags(fs)
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one FILE, got %d arguments", len(pos))
	}
	path, err := filepath.Abs(pos[0])
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	if err := c.Do(ctx, "POST", "/api/v1/backup", nil, api.BackupBody{Path: path}, nil); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "backup written to %s\n", path)
	return nil
}
