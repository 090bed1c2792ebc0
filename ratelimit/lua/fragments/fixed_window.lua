-- Fixed window: at most `limit` per window of `window` ms, windows aligned to multiples of
-- `window` on Redis's clock. State: one hash per policy and window,
-- `<key prefix>ratelimit:<policy>@<window start>` (state_hashes.lua: a window is its slice, and
-- its hash lives two), with a field per subject holding the units it used in that window. A
-- pair's key is `base .. subject`, `base` the start of the policy's keys
-- (`<key prefix>ratelimit:<policy>:`); it names the subject and is not itself a key. A field
-- holding anything but a number from 0 to 2^53 counts as nothing used, a number as its whole
-- part.
-- `fixed_window` returns allowed, remaining, retry_after (ms; -1: never, cost > limit), reset
-- (ms to the end of the window) and the function that consumes `cost`, followed by its
-- arguments (no closure is made per decision); `fixed_window_decide` is the same decision for a
-- lone pair, written straight into check.lua's answer.
local fixed_window_names = {}  -- hashes_name's cache
local fixed_window_texts = {}  -- n -> string.format('%d', n)
local fixed_window_floor, fixed_window_tonumber = math.floor, tonumber

-- What a field holds, as units used: a whole number from 0 to 2^53, or nothing used (a missing
-- field, or anything else: what Redis holds is not trusted, and the answers stay integers).
local function fixed_window_count(text)
  local used = fixed_window_tonumber(text)
  if not used or not (used >= 0 and used < 9007199254740992) then
    return 0
  end
  return fixed_window_floor(used)
end

-- The hash of the window from `start`.
local function fixed_window_hash(base, start, window)
  return hashes_name(fixed_window_names, base, start, window, '', fixed_window_count, 2)
end

-- A count as text for Redis.
local function fixed_window_text(value)
  local text = string.format('%d', value)
  fixed_window_texts[value] = text
  return text
end

-- The consume of a decision: `field` of `hash` is now `value`.
local function fixed_window_consume(hash, field, value)
  hashes_set(hash, field, value, fixed_window_texts[value] or fixed_window_text(value))
end
local function fixed_window_nothing() end

-- A decision of one pair whose field was read (hashes_read), taken without a call to the
-- algorithm: its answer (allowed, then allowed, remaining, retry_after, reset) goes into `out`
-- from out[m + 1], exactly as check.lua's `decide` writes it, and the new length is returned;
-- nil when the field was not read (its hash could not be: the decision goes the slow way).
-- `policy.reset` is the ms until the window ends.
local function fixed_window_decide(out, m, policy, field, cost)
  local used = policy.view[field]
  if not used then
    return nil
  end
  -- (Every figure is a whole number: the library's limit and cost, and `used` as read.)
  local limit, reset = policy.limit, policy.reset
  if used + cost <= limit then
    local remaining = limit - used - cost
    out[m + 1], out[m + 2], out[m + 3], out[m + 4], out[m + 5] =
        1, 1, remaining > 0 and remaining or 0, 0, reset
    if cost > 0 then
      local value = used + cost
      hashes_set(policy.hash, field, value, fixed_window_texts[value] or fixed_window_text(value))
    end
  else
    local remaining = limit - used
    out[m + 1], out[m + 2], out[m + 3], out[m + 4], out[m + 5] =
        0, 0, remaining > 0 and remaining or 0, cost > limit and -1 or reset, reset
  end
  return m + 5
end

-- check.lua's preparation of a policy for a call at `now`: the hashes its pairs read, and what
-- fixed_window_decide needs.
local function fixed_window_prepare(policy, now)
  local start = now - now % policy.window
  policy.hash = fixed_window_hash(policy.base, start, policy.window)
  policy.reset = start + policy.window - now
  policy.view = hashes_view[policy.hash]
  policy.reads = {policy.hash}
  policy.decide = fixed_window_decide
end

local function fixed_window(key, limit, window, _, cost, now, base)
  local start = now - now % window
  local hash = fixed_window_hash(base, start, window)
  local field = string.sub(key, #base + 1)
  local used = hashes_get(hash, field)
  local reset = start + window - now
  if used + cost <= limit then
    return true, limit - used - cost, 0, reset,
           cost > 0 and fixed_window_consume or fixed_window_nothing, hash, field, used + cost
  end
  return false, limit - used, cost > limit and -1 or reset, reset, fixed_window_nothing
end
