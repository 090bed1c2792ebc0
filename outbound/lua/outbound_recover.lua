-- Hands the in-flight messages of Bellhop processes whose heartbeat lapsed back to their
-- channels' queues, oldest first, so another process sends them; then forgets the process.
-- Two places per process and channel: its processing list (sends in flight) and its intake
-- set (elements taken and not yet filed, outbound_take.lua), handed back in take order.
-- KEYS[1] outbound:gateways (zset, score = heartbeat deadline in epoch ms)
-- ARGV[1] now (epoch ms)   ARGV[2] key prefix   ARGV[3…] channel names
-- Returns the number of messages handed back.
-- The processing, intake and queue keys are derived, not declared (Bellhop does not run on
-- Cluster). At most `budget` intake elements move per call (a dead intake may hold tens of
-- thousands): a process with more left stays in outbound:gateways for the next call.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local moved = 0
local budget = 10000
for _, gateway in ipairs(lapsed) do
  local done = true
  for i = 3, #ARGV do
    local queue = ARGV[2] .. 'outbound:' .. ARGV[i]
    local processing = queue .. ':processing:' .. gateway
    while redis.call('RPOPLPUSH', processing, queue) do
      moved = moved + 1
    end
    local intake = queue .. ':intake:' .. gateway
    while budget > 0 do
      local batch = redis.call('ZRANGE', intake, 0, math.min(budget, 1000) - 1)
      if #batch == 0 then
        break
      end
      for _, member in ipairs(batch) do
        -- LPUSH: the queue's back, as RPOPLPUSH does above; the oldest taken goes out first.
        redis.call('LPUSH', queue, string.sub(member, (string.find(member, ':', 1, true) or 0) + 1))
      end
      redis.call('ZREMRANGEBYRANK', intake, 0, #batch - 1)
      moved = moved + #batch
      budget = budget - #batch
    end
    if redis.call('EXISTS', intake) == 1 then
      done = false
    end
  end
  if done then
    redis.call('ZREM', KEYS[1], gateway)
  end
end
return moved
