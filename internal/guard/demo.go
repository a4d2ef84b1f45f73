package guard

import (
	"context"

	"github.com/tollguard/tollguard/internal/cli"
)

func runDemo(ctx context.Context, e *cli.Env, args []string) error {
	return &cli.UsageError{Msg: "demo: not wired yet"}
}
