package cluster

import (
	"context"
	"fmt"
	"log/slog"
)

// RedisLogger adapts slog to go-redis's internal logger, which otherwise
// prints every failed dial to stderr while Redis is down. main installs it
// once with redis.SetLogger(cluster.RedisLogger{L: logger}); the lines go
// out at Debug, because the node reports the state that matters itself
// (Status, tollguard_cluster_connected, one Warn per lost link).
type RedisLogger struct{ L *slog.Logger }

// Printf logs one go-redis message at Debug.
func (r RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	if r.L == nil {
		return
	}
	r.L.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "cluster")
}
