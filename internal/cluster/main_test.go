package cluster

import (
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestMain keeps go-redis's own dial-failure lines (the tests kill Redis on
// purpose) out of the test output, as main does for the daemon's log.
func TestMain(m *testing.M) {
	redis.SetLogger(RedisLogger{})
	os.Exit(m.Run())
}
