-- Fixed window: at most `limit` per window of `window` ms, windows aligned to multiples of
-- `window` on Redis's clock. State: a string "<start of the window it counts> <used>", which
-- expires one window after its first use in a window, so after that window's end (the start
-- is stored, so a stale count is never mistaken for the current window, whatever the clock
-- source). One GET and one SET per decision that consumes (a key's creation, its lifetime and
-- its count are one command), or one command alone for a new key (`write_now`, below).
-- `write_now`: this decision consumes if this pair allows (its last pair, the others allowed;
-- cost > 0), so a key that does not exist yet is created at once: one SET … NX GET, which
-- returns the state when the key exists and sets nothing then. A new key (most subjects of a
-- busy window) costs one command instead of two.
-- Returns allowed, remaining, retry_after (ms; -1: never, cost > limit), reset (ms to the end
-- of the window) and the function that consumes `cost`.
-- Numbers handed to Redis are formatted as integers (%d: sprintf of a long, where %.0f and
-- Lua's own number-to-text go through the much slower float printer); those that recur across
-- the decisions of one script call (a window's start, the lifetime) are formatted once.
local fixed_window_texts = {}
local function fixed_window_text(n)
  local text = fixed_window_texts[n]
  if not text then
    text = string.format('%d', n)
    fixed_window_texts[n] = text
  end
  return text
end
local fixed_window_prefixes = {}  -- window start -> "<start> "
local function fixed_window_written() end  -- the consume of a key SET … NX GET created
-- A new window's state after `cost`, and its lifetime, for SET … PX: one window from the first
-- use, not until the window's end: keys aligned to one instant would all expire together, a
-- stall in Redis's expire cycle every window. Not longer: keys kept past their use are what that
-- cycle wades through, which shows in a check's p99 when most subjects are new.
local function fixed_window_new(prefix, cost, window)
  return prefix .. fixed_window_text(cost), fixed_window_text(window + expiry_slack)
end
local function fixed_window(key, limit, window, _, cost, now, write_now)
  local start = now - now % window
  local prefix = fixed_window_prefixes[start]
  if not prefix then
    prefix = fixed_window_text(start) .. ' '
    fixed_window_prefixes[start] = prefix
  end
  local used = 0
  local state
  if write_now and cost <= limit then
    local fresh, lifetime = fixed_window_new(prefix, cost, window)
    state = redis.pcall('SET', key, fresh, 'PX', lifetime, 'NX', 'GET')
    if state == false then  -- it did not exist: created, consumed
      return true, limit - cost, 0, start + window - now, fixed_window_written
    end
  else
    state = redis.pcall('GET', key)
  end
  if type(state) == 'string' then
    if string.find(state, prefix, 1, true) == 1 then
      used = tonumber(string.sub(state, #prefix + 1)) or 0
    end
  elseif type(state) == 'table' and state.err then
    -- A hash {w, n}: the state of an earlier version of this script. Read once; the write
    -- below replaces it with a string. Any other type is an error for this decision only.
    local old = redis.call('HMGET', key, 'w', 'n')
    if tonumber(old[1]) == start then
      used = tonumber(old[2]) or 0
    end
  end
  local reset = start + window - now
  local allowed = used + cost <= limit
  local retry = 0
  if not allowed then
    retry = cost > limit and -1 or reset
  end
  local function consume()
    if used == 0 then
      local fresh, lifetime = fixed_window_new(prefix, cost, window)
      redis.call('SET', key, fresh, 'PX', lifetime)
    else
      redis.call('SET', key, prefix .. string.format('%d', used + cost), 'KEEPTTL')
    end
  end
  return allowed, limit - used - (allowed and cost or 0), retry, reset, consume
end
