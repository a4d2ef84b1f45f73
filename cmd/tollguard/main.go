// Command tollguard guards a SIP server against toll fraud. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/guard"
)

func main() {
	cli.LabStarter = guard.StartLab
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, guard.Commands()...)
	stop()
	os.Exit(code)
}
