-- GCRA, the generic cell rate algorithm: a token bucket of `burst` units refilled at `limit`
-- per `window` ms, kept as the theoretical arrival time (TAT) of the next unit.
-- Over any span of e ms it admits at most burst + limit * e / window.
-- The emission interval (window / limit ms) is seldom a whole number of ms. A fractional TAT
-- rounded at every write drifts (3001 per second admitted more than that; waits were reported
-- 1 ms long), so the TAT is kept exactly: whole ms plus a remainder in 1/limit ms, and every
-- figure below is counted in 1/limit ms, where the interval is exactly `window`. validate()
-- keeps burst * window under 2^52, so all of them are exact integers in a double.
-- State: a string "<ms> <remainder> <limit>", expiring when the bucket is full again.
-- `write_now`: as for fixed_window, a key that does not exist yet (a full bucket) is created at
-- once by one SET … NX GET, which returns the state when the key exists and sets nothing then.
-- Returns allowed, remaining (whole units left in the bucket), retry_after (ms until `cost`
-- fits; -1: never, cost > burst), reset (ms until the bucket is full) and the function that
-- consumes `cost`.
-- a / b rounded down and up, for a >= 0 (fmod is exact, so is the division that follows).
local function gcra_div_floor(a, b)
  return (a - math.fmod(a, b)) / b
end
local function gcra_div_ceil(a, b)
  local r = math.fmod(a, b)
  return (a - r) / b + (r > 0 and 1 or 0)
end
local function gcra_written() end  -- the consume of a key SET … NX GET created
-- The state after `after` (1/limit ms) ahead of now, and its lifetime: until the bucket is full.
local function gcra_state(after, limit, now)
  return string.format('%d %d %d', now + gcra_div_floor(after, limit), math.fmod(after, limit),
                       limit),
         string.format('%d', gcra_div_ceil(after, limit) + 1 + expiry_slack)
end
local function gcra(key, limit, window, burst, cost, now, write_now)
  local div_floor, div_ceil = gcra_div_floor, gcra_div_ceil

  local capacity = burst * window
  -- How far the TAT is ahead of now; 0 when the bucket is full.
  local ahead = 0
  local stored
  if write_now and cost > 0 and cost <= burst then
    local state, ttl = gcra_state(cost * window, limit, now)
    stored = redis.call('SET', key, state, 'PX', ttl, 'NX', 'GET')
    if stored == false then  -- it did not exist (a full bucket): created, consumed
      return true, div_floor(capacity - cost * window, window), 0, div_ceil(cost * window, limit),
             gcra_written
    end
  else
    stored = redis.call('GET', key) or ''
  end
  local ms, rem, per = string.match(stored, '^(%d+) (%d+) (%d+)$')
  ms, rem, per = tonumber(ms), tonumber(rem), tonumber(per)
  if not ms and tonumber(stored) then
    -- A fractional TAT of an earlier version of this script: up to the next whole ms.
    ms, rem, per = math.ceil(tonumber(stored)), 0, limit
  end
  if ms and per ~= limit and rem > 0 then
    -- The policy's limit changed: the remainder was in other units; round up to a whole ms.
    ms, rem = ms + 1, 0
  end
  if ms and ms >= now then
    ahead = (ms - now) * limit + rem
  end

  local allowed, retry, after = true, 0, ahead + cost * window
  if cost > burst then
    allowed, retry, after = false, -1, ahead
  elseif after > capacity then
    allowed, retry, after = false, div_ceil(after - capacity, limit), ahead
  end
  local function consume()
    if cost > 0 then
      -- %d, not %.0f: every figure is a whole number, and sprintf of a long is several times
      -- cheaper than the float printer (a number handed to redis.call as such goes through it).
      local state, ttl = gcra_state(after, limit, now)
      redis.call('SET', key, state, 'PX', ttl)
    end
  end
  return allowed, div_floor(math.max(0, capacity - after), window), retry,
         div_ceil(after, limit), consume
end
