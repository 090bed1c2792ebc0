-- Hands the in-flight messages of Bellhop processes whose heartbeat lapsed back to their
-- channels' queues, oldest first, so another process sends them; then forgets the process.
-- KEYS[1] outbound:gateways (zset, score = heartbeat deadline in epoch ms)
-- ARGV[1] now (epoch ms)   ARGV[2] key prefix   ARGV[3…] channel names
-- Returns the number of messages handed back.
-- The processing and queue keys are derived, not declared (Bellhop does not run on Cluster).
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local moved = 0
for _, gateway in ipairs(lapsed) do
  for i = 3, #ARGV do
    local queue = ARGV[2] .. 'outbound:' .. ARGV[i]
    local processing = queue .. ':processing:' .. gateway
    while redis.call('RPOPLPUSH', processing, queue) do
      moved = moved + 1
    end
  end
  redis.call('ZREM', KEYS[1], gateway)
end
return moved
