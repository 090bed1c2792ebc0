-- Rate-limit state kept in hashes: one hash per policy and slice of time, a field per subject
-- (fixed_window.lua: a slice is a window; gcra.lua: a slice at least as long as a bucket takes
-- to fill). A subject's first use in a slice adds a field to a hash that exists already
-- instead of creating a key with a lifetime of its own that Redis would later have to expire:
-- about half of what a decision cost Redis on a new subject.
-- A hash lives `keep` slices from its start (PEXPIRE … NX, set once, when it is created). Its
-- creation unlinks the hash `keep` - 1 slices before it, the oldest one still alive, so a busy
-- slice's state is freed off Redis's main thread (UNLINK) instead of by the expire cycle; a hash
-- left after an idle slice expires by itself. Before Redis 7.0 (no NX) the lifetime is set on
-- every write, and nothing is unlinked.
-- Reads and writes go through this call's own view of the hashes: `hashes_read` fills it with
-- one HMGET per hash for the pairs a call will decide (a field it did not read is read when
-- asked for, with HGET), a decision reads and consumes in it, and `hashes_flush` writes what was
-- consumed at the end, one HSET per hash. A script is atomic, so nothing else sees the state in
-- between, and decisions on one subject see each other in order. What a field holds is not
-- trusted: each algorithm's `parse` turns its text (false when missing) into its value. An
-- algorithm may also add to a hash's writes when they are flushed (`on_flush`).
-- Numbers handed to Redis are formatted as integers (%d: sprintf of a long, where %.0f and
-- Lua's own number-to-text go through the much slower float printer).
local hashes_view = {}    -- hash name -> field -> value (this call's view)
local hashes_writes = {}  -- hash name -> {field, value text, … in the order consumed; n}
local hashes_order = {}   -- the hashes changed, in order
local hashes_of = {}      -- hash name -> {base, start, width, suffix, parse, keep, on_flush}
local hashes_failed = {}  -- hash name -> the error reading it gave (not a hash)

-- The name of the hash of the slice of `width` ms from `start` of the policy whose pairs' keys
-- start with `base` (`<key prefix>ratelimit:<policy>:`): `<key prefix>ratelimit:<policy>@<start>`
-- followed by `suffix`. `names` is the algorithm's cache (base -> start -> name).
local function hashes_name(names, base, start, width, suffix, parse, keep, on_flush)
  local by_start = names[base]
  if not by_start then
    by_start = {}
    names[base] = by_start
  end
  local hash = by_start[start]
  if not hash then
    hash = string.sub(base, 1, -2) .. '@' .. string.format('%d', start) .. suffix
    by_start[start] = hash
    hashes_view[hash] = {}
    hashes_of[hash] = {base, start, width, suffix, parse, keep, on_flush}
  end
  return hash
end

-- Reads the fields of `wanted` (hash name -> {fields…; n}) with one HMGET per hash. A hash that
-- cannot be read (another type) is remembered: each decision on it fails alone.
local function hashes_read(wanted)
  for hash, fields in pairs(wanted) do
    local view, parse = hashes_view[hash], hashes_of[hash][5]
    local missing = parse(false)
    for first = 1, fields.n, 4000 do
      local last = math.min(first + 3999, fields.n)
      local values = redis.pcall('HMGET', hash, unpack(fields, first, last))
      if type(values) == 'table' and values.err then
        hashes_failed[hash] = values.err
        break
      end
      for i = first, last do
        local value = values[i - first + 1]
        if value then
          view[fields[i]] = parse(value)
        else
          view[fields[i]] = missing
        end
      end
    end
  end
end

-- The value of `field` in `hash`, read now (HGET) if the call did not read it; raises the
-- error of a hash that cannot be read.
local function hashes_get(hash, field)
  local view = hashes_view[hash]
  local value = view[field]
  if value == nil then
    local failed = hashes_failed[hash]
    if failed then
      error({err = failed})
    end
    value = hashes_of[hash][5](redis.call('HGET', hash, field))
    view[field] = value
  end
  return value
end

-- `field` of `hash` is now `value`, `text` in Redis. The write is queued as is: a subject
-- consumed twice in a call is written twice by one HSET, whose later value wins.
local function hashes_set(hash, field, value, text)
  hashes_view[hash][field] = value
  local writes = hashes_writes[hash]
  if not writes then
    writes = {n = 0}
    hashes_writes[hash] = writes
    hashes_order[#hashes_order + 1] = hash
  end
  local n = writes.n
  writes[n + 1], writes[n + 2], writes.n = field, text, n + 2
end

-- Writes what this call's decisions consumed: one HSET per hash (in chunks, for unpack), its
-- lifetime, and on a hash's creation the oldest one before it unlinked. `now` is the call's.
local function hashes_flush(now)
  local nx = (tonumber(redis.REDIS_VERSION_NUM) or 0) >= 0x070000
  for _, hash in ipairs(hashes_order) do
    local writes = hashes_writes[hash]
    local of = hashes_of[hash]
    if of[7] then
      of[7](hash, writes)
    end
    for first = 1, writes.n, 4000 do
      redis.call('HSET', hash, unpack(writes, first, math.min(first + 3999, writes.n)))
    end
    local base, start, width, suffix, keep = of[1], of[2], of[3], of[4], of[6]
    local lifetime = string.format('%d', start + keep * width - now + expiry_slack)
    if nx then
      if redis.call('PEXPIRE', hash, lifetime, 'NX') == 1 then
        redis.call('UNLINK', string.sub(base, 1, -2) .. '@' ..
                   string.format('%d', start - (keep - 1) * width) .. suffix)
      end
    else
      redis.call('PEXPIRE', hash, lifetime)
    end
  end
  hashes_order, hashes_writes = {}, {}
end
