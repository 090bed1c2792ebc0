-- Fixed window: at most `limit` per window of `window` ms, windows aligned to multiples of
-- `window` on Redis's clock. State: one hash per policy and window,
-- `<key prefix>ratelimit:<policy>@<window start>`, with a field per subject holding the units it
-- used in that window. A pair's key is `base .. subject`, `base` the start of the policy's keys
-- (`<key prefix>ratelimit:<policy>:`); it names the subject and is not itself a key. A
-- subject's first use in a window adds a field to a hash that exists already instead of
-- creating a key with a lifetime of its own that Redis would later have to expire: about half
-- of what a decision cost Redis on a new subject.
-- The hash lives until the end of the next window (PEXPIRE … NX, set once, when it is created).
-- Its creation unlinks the previous window's hash, so a busy window's state is freed off
-- Redis's main thread (UNLINK) instead of by the expire cycle; a hash left after an idle window
-- expires by itself. Before Redis 7.0 (no NX) the lifetime is set on every write, and nothing
-- is unlinked.
-- Reads and writes go through this call's own view of the hashes: `fixed_window_read` fills it
-- with one HMGET per hash for the pairs a call will decide (a pair it did not read is read when
-- decided, with HGET), a decision reads and consumes in it, and `fixed_window_flush` writes
-- what was consumed at the end, one HSET per hash. A script is atomic, so nothing else sees the
-- state in between, and decisions on one subject see each other in order. What a field holds is
-- not trusted: anything but a number from 0 to 2^53 counts as nothing used, a number as its
-- whole part.
-- `fixed_window` returns allowed, remaining, retry_after (ms; -1: never, cost > limit), reset
-- (ms to the end of the window) and the function that consumes `cost`, followed by its
-- arguments (no closure is made per decision); `fixed_window_decide` is the same decision for a
-- lone pair, written straight into check.lua's answer.
-- Numbers handed to Redis are formatted as integers (%d: sprintf of a long, where %.0f and
-- Lua's own number-to-text go through the much slower float printer).
local fixed_window_hashes = {}  -- base -> window start -> hash name
local fixed_window_used = {}    -- hash name -> field -> units used (this call's view)
local fixed_window_writes = {}  -- hash name -> {field, value text, … in the order consumed; n}
local fixed_window_order = {}   -- the hashes changed, in order
local fixed_window_of = {}      -- hash name -> {base, window start, window}
local fixed_window_failed = {}  -- hash name -> the error reading it gave (not a hash)
local fixed_window_texts = {}   -- n -> string.format('%d', n)
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

local function fixed_window_hash(base, start, window)
  local by_start = fixed_window_hashes[base]
  if not by_start then
    by_start = {}
    fixed_window_hashes[base] = by_start
  end
  local hash = by_start[start]
  if not hash then
    hash = string.sub(base, 1, -2) .. '@' .. string.format('%d', start)
    by_start[start] = hash
    fixed_window_used[hash] = {}
    fixed_window_of[hash] = {base, start, window}
  end
  return hash
end

-- Reads the fields of `wanted` (hash name -> {fields}) with one HMGET per hash. A hash that
-- cannot be read (another type) is remembered: each decision on it fails alone.
local function fixed_window_read(wanted)
  for hash, fields in pairs(wanted) do
    local used = fixed_window_used[hash]
    for first = 1, fields.n, 4000 do
      local last = math.min(first + 3999, fields.n)
      local values = redis.pcall('HMGET', hash, unpack(fields, first, last))
      if type(values) == 'table' and values.err then
        fixed_window_failed[hash] = values.err
        break
      end
      for i = first, last do
        used[fields[i]] = fixed_window_count(values[i - first + 1])
      end
    end
  end
end

-- The consume of a decision: `field` of `hash` is now `value` (no closure per decision: the
-- algorithm hands these back with the function).
-- The write is queued as is: a subject consumed twice in a call is written twice by one HSET,
-- whose later value wins.
local function fixed_window_consume(hash, field, value)
  fixed_window_used[hash][field] = value
  local writes = fixed_window_writes[hash]
  if not writes then
    writes = {n = 0}
    fixed_window_writes[hash] = writes
    fixed_window_order[#fixed_window_order + 1] = hash
  end
  local text = fixed_window_texts[value]
  if not text then
    text = string.format('%d', value)
    fixed_window_texts[value] = text
  end
  local n = writes.n
  writes[n + 1], writes[n + 2], writes.n = field, text, n + 2
end
local function fixed_window_nothing() end

-- A decision of one pair whose field was read (fixed_window_read), taken without a call to the
-- algorithm: its answer (allowed, then allowed, remaining, retry_after, reset) goes into `out`
-- from out[m + 1], exactly as check.lua's `decide` writes it, and the new length is returned;
-- nil when the field was not read (its hash could not be: the decision goes the slow way).
-- `reset` is the ms until the window ends.
local function fixed_window_decide(out, m, hash, field, limit, reset, cost)
  local used = fixed_window_used[hash][field]
  if not used then
    return nil
  end
  -- (Every figure is a whole number: the library's limit and cost, and `used` as read.)
  if used + cost <= limit then
    local remaining = limit - used - cost
    out[m + 1], out[m + 2], out[m + 3], out[m + 4], out[m + 5] =
        1, 1, remaining > 0 and remaining or 0, 0, reset
    if cost > 0 then
      fixed_window_consume(hash, field, used + cost)
    end
  else
    local remaining = limit - used
    out[m + 1], out[m + 2], out[m + 3], out[m + 4], out[m + 5] =
        0, 0, remaining > 0 and remaining or 0, cost > limit and -1 or reset, reset
  end
  return m + 5
end

local function fixed_window(key, limit, window, _, cost, now, _, base)
  local start = now - now % window
  local hash = fixed_window_hash(base, start, window)
  local field = string.sub(key, #base + 1)
  local used = fixed_window_used[hash][field]
  if not used then
    local failed = fixed_window_failed[hash]
    if failed then
      error({err = failed})
    end
    used = fixed_window_count(redis.call('HGET', hash, field))
    fixed_window_used[hash][field] = used
  end
  local reset = start + window - now
  if used + cost <= limit then
    return true, limit - used - cost, 0, reset,
           cost > 0 and fixed_window_consume or fixed_window_nothing, hash, field, used + cost
  end
  return false, limit - used, cost > limit and -1 or reset, reset, fixed_window_nothing
end

-- Writes what this call's decisions consumed: one HSET per hash (in chunks, for unpack), its
-- lifetime, and on a hash's creation the previous window's hash unlinked. `now` is the call's.
local function fixed_window_flush(now)
  local nx = (tonumber(redis.REDIS_VERSION_NUM) or 0) >= 0x070000
  for _, hash in ipairs(fixed_window_order) do
    local writes = fixed_window_writes[hash]
    for first = 1, writes.n, 4000 do
      redis.call('HSET', hash, unpack(writes, first, math.min(first + 3999, writes.n)))
    end
    local of = fixed_window_of[hash]
    local base, start, window = of[1], of[2], of[3]
    local lifetime = string.format('%d', start + 2 * window - now + expiry_slack)
    if nx then
      if redis.call('PEXPIRE', hash, lifetime, 'NX') == 1 then
        redis.call('UNLINK', fixed_window_hash(base, start - window, window))
      end
    else
      redis.call('PEXPIRE', hash, lifetime)
    end
  end
  fixed_window_order, fixed_window_writes = {}, {}
end
