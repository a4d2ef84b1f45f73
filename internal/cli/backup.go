package cli

import (
	"context"
	"flag"
	"fmt"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/safetext"
	"github.com/tollguard/tollguard/internal/store"
)

// runBackup is `tollguard backup NAME`: the running daemon writes a
// consistent copy of its SQLite store (VACUUM INTO), mode 0600, to the new
// file NAME in its backup directory (store.backup_dir, default
// <data_dir>/backups). NAME is a file name, not a path. For the postgres
// driver use pg_dump.
func runBackup(ctx context.Context, e *Env, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	cf := addClientFlags(fs)
	pos, err := e.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one NAME, got %d arguments", len(pos))
	}
	if err := store.CheckBackupName(pos[0]); err != nil {
		return usagef("%s: NAME is a new file name in the daemon's backup directory (store.backup_dir, default <data_dir>/backups), not a path", err)
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	var rep api.BackupReply
	if err := c.Do(ctx, "POST", "/api/v1/backup", nil, api.BackupBody{Name: pos[0]}, &rep); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "backup written to %s\n", safetext.Escape(rep.Path))
	return nil
}
