// Command tollguard guards a SIP server against toll fraud. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/tollguard/tollguard/internal/cli"
	"github.com/tollguard/tollguard/internal/daemon"
	"github.com/tollguard/tollguard/internal/demo"
)

func main() {
	cli.LabStarter = demo.StartLab
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, append(daemon.Commands(), demo.Commands()...)...)
	stop()
	os.Exit(code)
}
