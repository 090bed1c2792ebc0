-- One channel's queue figures, read together.
-- KEYS[1] outbound:<channel>   KEYS[2] ready   KEYS[3] delayed   KEYS[4] dead   KEYS[5] paused
-- KEYS[6] stats (hash)   KEYS[7] outbound:gateways
-- ARGV[1] prefix of processing lists ('outbound:<channel>:processing:')
-- Returns {waiting, active, delayed, dead, paused, {counter, value, …}}.
local active = 0
for _, gateway in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
  active = active + redis.call('LLEN', ARGV[1] .. gateway)
end
return {redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]), active,
        redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[4]), redis.call('EXISTS', KEYS[5]),
        redis.call('HGETALL', KEYS[6])}
