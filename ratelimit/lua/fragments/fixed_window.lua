-- Fixed window: at most `limit` per window of `window` ms, windows aligned to multiples of
-- `window` on Redis's clock. State: hash {w = start of the window it counts, n = used}, which
-- expires two windows after its first use in a window (the start is stored, so a stale hash is
-- never mistaken for the current window, whatever the clock source).
-- Returns allowed, remaining, retry_after (ms; -1: never, cost > limit), reset (ms to the end
-- of the window) and the function that consumes `cost`.
-- Numbers handed to redis.call are printf-formatted at every call; those that recur across the
-- decisions of one script call (a window's start, the cost, the lifetime) are formatted once.
local fixed_window_texts = {}
local function fixed_window_text(n)
  local text = fixed_window_texts[n]
  if not text then
    text = string.format('%.0f', n)
    fixed_window_texts[n] = text
  end
  return text
end
local function fixed_window(key, limit, window, _, cost, now)
  local start = now - now % window
  local state = redis.call('HMGET', key, 'w', 'n')
  local used = 0
  if tonumber(state[1]) == start then
    used = tonumber(state[2]) or 0
  end
  local reset = start + window - now
  local allowed = used + cost <= limit
  local retry = 0
  if not allowed then
    retry = cost > limit and -1 or reset
  end
  local function consume()
    if used == 0 then
      -- Two windows from the first use, not from the window's end: keys aligned to one
      -- instant would all expire together, a stall in Redis's expire cycle every window.
      redis.call('HSET', key, 'w', fixed_window_text(start), 'n', fixed_window_text(cost))
      redis.call('PEXPIRE', key, fixed_window_text(2 * window + expiry_slack))
    else
      redis.call('HINCRBY', key, 'n', fixed_window_text(cost))
    end
  end
  return allowed, limit - used - (allowed and cost or 0), retry, reset, consume
end
