-- GCRA, the generic cell rate algorithm: a token bucket of `burst` units refilled at `limit`
-- per `window` ms, kept as the theoretical arrival time (TAT) of the next unit.
-- Over any span of e ms it admits at most burst + limit * e / window.
-- The emission interval (window / limit ms) is seldom a whole number of ms. A fractional TAT
-- rounded at every write drifts (3001 per second admitted more than that; waits were reported
-- 1 ms long), so every figure is counted in 1/limit ms, where the interval is exactly
-- `window`. validate() keeps burst * window under 2^52, so all of them are exact integers in a
-- double.
-- State (state_hashes.lua): one hash per policy and slice of time,
-- `<key prefix>ratelimit:<policy>@<slice start>/<limit>`, a field per subject holding its TAT
-- as a signed whole number of 1/limit ms from the end of the slice (the units are in the
-- name: a changed limit starts its buckets full, as does a changed slice). A slice is as long
-- as a bucket takes to fill from empty, `reach` ms, and at least gcra_min_slice: a TAT written
-- in a slice is at most `reach` after it was written, so it has passed by the end of the next
-- slice, and a subject's state is in the current slice's hash or the one before (read only
-- while something in it can still be ahead: the first `reach` ms of a slice). Its field `@max`
-- holds the latest TAT written into it, so the slice before is read only when that is still
-- ahead of now (one HGET instead of an HMGET of every subject: where buckets refill fast,
-- almost never). A hash lives 3 slices, and its creation unlinks the one two slices before it.
-- A field that is not a whole number within ±2^53 counts as no state (a full bucket). A
-- subject named `@max` shares its field: it is held to the latest TAT of its slice, never
-- admitted more than its own.
-- `gcra` returns allowed, remaining (whole units left in the bucket), retry_after (ms until
-- `cost` fits; -1: never, cost > burst), reset (ms until the bucket is full) and the function
-- that consumes `cost` with its arguments; `gcra_decide` is the same decision for a lone pair,
-- written straight into check.lua's answer.
local gcra_min_slice = 1000
local gcra_mark = '@max'
local gcra_names = {}  -- hashes_name's cache
local gcra_live = {}   -- hash of a slice before -> whether a TAT in it is ahead of this call's now
local gcra_top = {}    -- hash -> the latest TAT this call wrote into it
local gcra_floor, gcra_fmod, gcra_tonumber = math.floor, math.fmod, tonumber

-- a / b rounded down and up, for a >= 0 (fmod is exact, so is the division that follows).
local function gcra_div_floor(a, b)
  return (a - gcra_fmod(a, b)) / b
end
local function gcra_div_ceil(a, b)
  local r = gcra_fmod(a, b)
  return (a - r) / b + (r > 0 and 1 or 0)
end

-- What a field holds: the TAT's offset, or false (no state).
local function gcra_offset(text)
  local v = gcra_tonumber(text)
  if not v or not (v > -9007199254740992 and v < 9007199254740992) or v ~= gcra_floor(v) then
    return false
  end
  return v
end

-- How far (1/limit ms) the TAT held by `value`, an offset from `slice_end`, is ahead of now.
local function gcra_ahead(value, slice_end, now, limit)
  local ahead = (slice_end - now) * limit + value
  return ahead > 0 and ahead or 0
end

-- The latest TAT this call writes into `hash`, added to its writes as `@max` when later than
-- the one it holds (state_hashes.lua's on_flush).
local function gcra_flush(hash, writes)
  local top = gcra_top[hash]
  local held = hashes_get(hash, gcra_mark)
  if top and not (held and held >= top) then
    local n = writes.n
    writes[n + 1], writes[n + 2], writes.n = gcra_mark, string.format('%d', top), n + 2
  end
end

-- The slice of a policy at `now`: its hash, the end of the slice, and the hash of the slice
-- before when a TAT in it is still ahead of now (else nil).
local function gcra_slice(base, limit, window, burst, now)
  local reach = gcra_div_ceil(burst * window, limit)
  local width = reach > gcra_min_slice and reach or gcra_min_slice
  local start = now - now % width
  local suffix = '/' .. string.format('%d', limit)
  local hash = hashes_name(gcra_names, base, start, width, suffix, gcra_offset, 3, gcra_flush)
  local before
  if now - start < reach then
    before = hashes_name(gcra_names, base, start - width, width, suffix, gcra_offset, 3, gcra_flush)
    local live = gcra_live[before]
    if live == nil then
      -- A hash that cannot be read is read anyway: each decision on it fails with its error.
      local held = redis.pcall('HGET', before, gcra_mark)
      if type(held) == 'table' and held.err then
        live = true
      else
        held = gcra_offset(held)
        live = held and gcra_ahead(held, start, now, limit) > 0 or false
        hashes_view[before][gcra_mark] = held
      end
      gcra_live[before] = live
    end
    if not live then
      before = nil
    end
  end
  return hash, start + width, before
end

local function gcra_consume(hash, field, value)
  hashes_set(hash, field, value, string.format('%d', value))
  local top = gcra_top[hash]
  if not top or value > top then
    gcra_top[hash] = value
  end
end
local function gcra_nothing() end

-- The decision over a TAT `ahead` of now: allowed, remaining, retry_after, reset, and the TAT
-- after it (1/limit ms ahead of now).
local function gcra_over(ahead, limit, window, burst, cost)
  local capacity = burst * window
  local allowed, retry, after = true, 0, ahead + cost * window
  if cost > burst then
    allowed, retry, after = false, -1, ahead
  elseif after > capacity then
    allowed, retry, after = false, gcra_div_ceil(after - capacity, limit), ahead
  end
  local left = capacity - after
  return allowed, gcra_div_floor(left > 0 and left or 0, window), retry,
         gcra_div_ceil(after, limit), after
end

-- A lone pair's decision, its field read (hashes_read), into `out` from out[m + 1] (allowed,
-- then allowed, remaining, retry_after, reset); returns the new length, or nil when the field
-- was not read (a hash could not be: the decision goes the slow way).
local function gcra_decide(out, m, policy, field, cost)
  local hash, slice_end, before, now, limit = policy.hash, policy.slice_end, policy.before,
                                              policy.now, policy.limit
  local value = hashes_view[hash][field]
  if value == nil then
    return nil
  end
  local ahead = 0
  if value then
    ahead = gcra_ahead(value, slice_end, now, limit)
  elseif before then
    value = hashes_view[before][field]
    if value == nil then
      return nil
    end
    if value then
      ahead = gcra_ahead(value, slice_end - policy.width, now, limit)
    end
  end
  local allowed, remaining, retry, reset, after =
      gcra_over(ahead, limit, policy.window, policy.burst, cost)
  out[m + 1], out[m + 2], out[m + 3], out[m + 4], out[m + 5] =
      allowed and 1 or 0, allowed and 1 or 0, remaining, retry, reset
  if allowed and cost > 0 then
    gcra_consume(hash, field, (now - slice_end) * limit + after)
  end
  return m + 5
end

-- check.lua's preparation of a policy for a call at `now`.
local function gcra_prepare(policy, now)
  local hash, slice_end, before =
      gcra_slice(policy.base, policy.limit, policy.window, policy.burst, now)
  policy.hash, policy.slice_end, policy.before, policy.now = hash, slice_end, before, now
  policy.width = hashes_of[hash][3]
  policy.reads = before and {hash, before} or {hash}
  policy.mark = gcra_mark  -- read with the subjects: whether the flush raises it
  policy.decide = gcra_decide
end

local function gcra(key, limit, window, burst, cost, now, base)
  local hash, slice_end, before = gcra_slice(base, limit, window, burst, now)
  local field = string.sub(key, #base + 1)
  local value = hashes_get(hash, field)
  local ahead = 0
  if value then
    ahead = gcra_ahead(value, slice_end, now, limit)
  elseif before then
    value = hashes_get(before, field)
    if value then
      ahead = gcra_ahead(value, slice_end - hashes_of[hash][3], now, limit)
    end
  end
  local allowed, remaining, retry, reset, after = gcra_over(ahead, limit, window, burst, cost)
  if allowed and cost > 0 then
    return true, remaining, 0, reset, gcra_consume, hash, field, (now - slice_end) * limit + after
  end
  return allowed, remaining, retry, reset, gcra_nothing
end
