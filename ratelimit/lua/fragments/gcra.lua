-- GCRA, the generic cell rate algorithm: a token bucket of `burst` units refilled at `limit`
-- per `window` ms, kept as one number, the theoretical arrival time (TAT) of the next unit.
-- Over any span of e ms it admits at most burst + limit * e / window. State: a string with the
-- TAT (ms), expiring when the bucket is full again.
-- Returns allowed, remaining (whole units left in the bucket), retry_after (ms until `cost`
-- fits; -1: never, cost > burst), reset (ms until the bucket is full) and the function that
-- consumes `cost`.
local function gcra(key, limit, window, burst, cost, now)
  local interval = window / limit
  local capacity = burst * interval
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then
    tat = now
  end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - capacity
  local allowed = allow_at <= now + 1e-6  -- float rounding of the interval
  local retry, after = 0, new_tat
  if not allowed then
    retry = cost > burst and -1 or (allow_at - now)
    after = tat
  end
  local function consume()
    if cost > 0 then
      redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
    end
  end
  return allowed, math.floor((now + capacity - after) / interval + 1e-6), retry, after - now,
         consume
end
