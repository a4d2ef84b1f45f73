package cluster

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// publishScript stores (ban) or deletes (unban) one target and publishes
// the message, atomically. KEYS: hash, expiry set. ARGV: field, message,
// type, score, channel, "1" to also delete the address's ip_account bans,
// and the HSCAN pattern for them.
var publishScript = redis.NewScript(`
local f, msg = ARGV[1], ARGV[2]
if ARGV[3] == 'ban' then
  redis.call('HSET', KEYS[1], f, msg)
  redis.call('ZADD', KEYS[2], ARGV[4], f)
else
  redis.call('HDEL', KEYS[1], f)
  redis.call('ZREM', KEYS[2], f)
  if ARGV[6] == '1' then
    local cursor = '0'
    repeat
      local r = redis.call('HSCAN', KEYS[1], cursor, 'MATCH', ARGV[7], 'COUNT', 1000)
      cursor = r[1]
      for i = 1, #r[2], 2 do
        redis.call('HDEL', KEYS[1], r[2][i])
        redis.call('ZREM', KEYS[2], r[2][i])
      end
    until cursor == '0'
  end
end
redis.call('PUBLISH', ARGV[5], msg)
return 1
`)

// purgeBatch bounds the work of one purge call.
const purgeBatch = 1000

// purgeScript deletes up to purgeBatch bans whose expiry is at or before
// ARGV[1] (Unix ms) and returns how many it deleted.
var purgeScript = redis.NewScript(`
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, f in ipairs(old) do
  redis.call('HDEL', KEYS[1], f)
end
if #old > 0 then
  redis.call('ZREM', KEYS[2], unpack(old))
end
return #old
`)

// loadScripts makes sure the server has the scripts, so EVALSHA in
// pipelines cannot fail with NOSCRIPT (a restarted Redis forgets them; a
// new session loads them again).
func loadScripts(ctx context.Context, c redis.Scripter) error {
	for _, s := range []*redis.Script{publishScript, purgeScript, counterScript} {
		if err := s.Load(ctx, c).Err(); err != nil {
			return fmt.Errorf("loading scripts: %w", err)
		}
	}
	return nil
}
