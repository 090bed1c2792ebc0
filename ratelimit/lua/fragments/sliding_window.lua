-- Sliding window (exact, a log): at most `limit` in any `window` ms, i.e. in (now - window,
-- now]. State: a sorted set with one member per unit consumed, scored by its time (ms); members
-- older than the window are dropped on every call. Memory is O(limit) per key.
-- Returns allowed, remaining, retry_after (ms until enough units leave the window; -1: never,
-- cost > limit), reset (ms until every unit in the window has left it) and the function that
-- consumes `cost`.
local function sliding_window(key, limit, window, _, cost, now)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.3f', now - window))
  local used = redis.call('ZCARD', key)
  local allowed = used + cost <= limit
  local retry = 0
  if not allowed then
    if cost > limit then
      retry = -1
    else
      -- The (used + cost - limit)-th oldest unit must leave first.
      local oldest = redis.call('ZRANGE', key, used + cost - limit - 1, used + cost - limit - 1,
                                'WITHSCORES')
      retry = tonumber(oldest[2]) + window - now
    end
  end
  local reset = 0
  if used > 0 then
    local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    reset = tonumber(newest[2]) + window - now
  end
  local function consume()
    -- Unique members: within one ms the count only grows; other ms differ in the prefix.
    local at = string.format('%.3f', now)
    local args = {}
    for i = 1, cost do
      args[#args + 1] = at
      args[#args + 1] = at .. ':' .. (used + i)
      -- In chunks: unpack() and redis.call() take at most ~8000 values (Lua's C stack), and a
      -- cost may be up to the limit, 100000.
      if #args == 2000 or i == cost then
        redis.call('ZADD', key, unpack(args))
        args = {}
      end
    end
    redis.call('PEXPIRE', key, math.ceil(window) + expiry_slack)
  end
  if allowed and cost > 0 then
    reset = window
  end
  return allowed, limit - used - (allowed and cost or 0), retry, reset, consume
end
