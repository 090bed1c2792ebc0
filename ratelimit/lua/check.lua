-- Rate-limit decisions, a batch of them in one call (the library coalesces the checks that
-- arrive together, docs/ratelimit.md). Each decision is over one or more (policy, key) pairs:
-- `cost` is consumed from all of them, or, when any one refuses, from none. Decisions are
-- applied in order, each one's effects before the next is read, so two decisions on one key
-- see each other exactly as two calls one after the other would. Time is Redis's own (TIME),
-- read once per call, so the clocks of the processes sharing this Redis do not matter.
--
-- KEYS         ratelimit:<policy>:<key>, every decision's pairs in turn
-- ARGV[1]      '' for Redis's clock; a time in ms for tests only (the library sets it only when
--              a test clock is installed)
-- ARGV[2]      p, the number of policies the call uses, then 5 arguments per policy:
--              algorithm (fixed_window | sliding_window | gcra), limit, window (ms), burst (gcra;
--              ignored otherwise), and the start its pairs' keys share,
--              `<key prefix>ratelimit:<policy>:` (for a fixed window and gcra a pair's subject
--              is the rest of its key, and the state is in hashes per slice of time:
--              lua/fragments/state_hashes.lua)
-- then the decisions, in groups of decisions that follow each other with the same cost and
--              policies: cost (integer >= 0; 0 only looks), n (the number of pairs of each),
--              count (decisions in the group), then the n pairs' policies by index (1 .. p);
--              the group's keys are its decisions' pairs in turn (count * n keys)
-- Returns a flat array: now (ms), then per decision either its answer, allowed (1/0) followed
-- by 4 figures per pair: allowed (1/0), remaining, retry_after (ms, -1 = never: cost above the
-- policy's capacity), reset (ms); or one error reply: that decision could not be taken (a key
-- of another type, a bad argument) and consumed nothing; the others are unaffected.
-- With a test clock, time does not pass for Redis as it does for the keys' lifetimes: they
-- get this much longer, so a slow machine cannot expire a key between two checks of a test.
local expiry_slack = 0
--#include state_hashes.lua
--#include fixed_window.lua
--#include sliding_window.lua
--#include gcra.lua
local algorithms = {fixed_window = fixed_window, sliding_window = sliding_window, gcra = gcra}

local now = tonumber(ARGV[1])
if now then
  expiry_slack = 600000
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The policies, by the text of their index: a decision's pairs name them without a tonumber.
-- A fixed window's and gcra's come with the hashes their pairs read (with one HMGET per hash
-- before any decision: hashes_read) and their fast decision of a lone pair.
local prepare = {[fixed_window] = fixed_window_prepare, [gcra] = gcra_prepare}
local policies = {}
local wanted = {}  -- hash name -> fields
local p = tonumber(ARGV[2]) or -1
if p < 0 or 2 + 5 * p > #ARGV then
  return redis.error_reply('malformed rate-limit batch: policies')
end
for i = 1, p do
  local a = 3 + 5 * (i - 1)
  local policy = {algorithm = algorithms[ARGV[a]], name = ARGV[a], limit = tonumber(ARGV[a + 1]),
                  window = tonumber(ARGV[a + 2]), burst = tonumber(ARGV[a + 3]), base = ARGV[a + 4]}
  local prepare_policy = prepare[policy.algorithm]
  if prepare_policy then
    if not policy.limit or policy.limit < 1 or not policy.window or policy.window < 1 or
        not policy.burst or #policy.base < 1 then
      return redis.error_reply('malformed rate-limit batch: policy ' .. i)
    end
    prepare_policy(policy, now)
    policy.field_from = #policy.base + 1  -- where a pair's key has its subject
    policy.wanted = {}
    for r, hash in ipairs(policy.reads) do
      local fields = wanted[hash]
      if not fields then
        fields = {n = 0}
        wanted[hash] = fields
        if r == 1 and policy.mark then  -- a field of the policy's own, read with the subjects'
          fields.n, fields[1] = 1, policy.mark
        end
      end
      policy.wanted[r] = fields
    end
  end
  policies[tostring(i)] = policy
end

-- One decision: its pairs are KEYS[first .. first + n - 1], their policies' indexes ARGV[a ..].
-- Its answer goes into `out` from out[m + 1]: allowed, then 4 figures per pair; returns the new
-- length. Every pair is read before anything is written, so an error (raised by redis.call,
-- caught by the pcall below) leaves the decision's keys as they were.
local out = {0}
local floor, ceil = math.floor, math.ceil
local consumers = {}  -- a decision's consumes and their arguments, 4 per pair (reused)
local function decide(first, n, a, cost, m)
  local all_allowed = true
  local head = m + 1
  local consume, c1, c2, c3
  m = head
  for i = 0, n - 1 do
    local policy = policies[ARGV[a + i]]
    if not policy then
      error('no rate-limit policy ' .. tostring(ARGV[a + i]))
    end
    if not policy.algorithm then
      error('unknown rate-limit algorithm: ' .. tostring(policy.name))
    end
    -- An algorithm's consume comes with up to three arguments for it (no closure per pair).
    local allowed, remaining, retry, reset
    allowed, remaining, retry, reset, consume, c1, c2, c3 =
        policy.algorithm(KEYS[first + i], policy.limit, policy.window, policy.burst, cost, now,
                         policy.base)
    all_allowed = all_allowed and allowed
    if n > 1 then
      local c = 4 * i
      consumers[c + 1], consumers[c + 2], consumers[c + 3], consumers[c + 4] = consume, c1, c2, c3
    end
    remaining = floor(remaining)
    reset = ceil(reset)
    out[m + 1] = allowed and 1 or 0
    out[m + 2] = remaining > 0 and remaining or 0
    out[m + 3] = retry < 0 and -1 or ceil(retry)
    out[m + 4] = reset > 0 and reset or 0
    m = m + 4
  end
  if all_allowed then
    out[head] = 1
    if cost > 0 then
      if n > 1 then
        for c = 1, 4 * n, 4 do
          consumers[c](consumers[c + 1], consumers[c + 2], consumers[c + 3])
        end
      else
        consume(c1, c2, c3)
      end
    end
  else
    out[head] = 0
  end
  return m
end

-- The layout is the library's own: a slip there is no one decision's fault, and it is found
-- before any decision consumes, so a refused call changed nothing. (Walked twice, once to
-- check and once to decide, rather than kept: a table per decision costs more than the walk.)
-- The walk also gathers the fields the hashes are read for.
local last = #ARGV
local fields_at = {}  -- key index -> the field of a pair kept in hashes (fixed window, gcra)
local sub = string.sub
local key, a = 1, 3 + 5 * p
while a <= last do
  local cost, n, count = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if not cost or not n or n < 1 or not count or count < 1 or key + n * count - 1 > #KEYS or
      a + 2 + n > last then
    return redis.error_reply('malformed rate-limit batch at argument ' .. a)
  end
  for i = 0, n - 1 do
    local policy = policies[ARGV[a + 3 + i]]
    local wanted_by = policy and policy.wanted
    if wanted_by then
      local from, fields = policy.field_from, wanted_by[1]
      local f = fields.n
      for k = key + i, key + n * count - 1, n do
        local field = sub(KEYS[k], from)
        f = f + 1
        fields[f] = field
        fields_at[k] = field
      end
      fields.n = f
      for r = 2, #wanted_by do  -- gcra's slice before, when read
        fields = wanted_by[r]
        f = fields.n
        for k = key + i, key + n * count - 1, n do
          f = f + 1
          fields[f] = fields_at[k]
        end
        fields.n = f
      end
    end
  end
  key, a = key + n * count, a + 3 + n
end
if key - 1 ~= #KEYS then
  return redis.error_reply('malformed rate-limit batch: ' .. #KEYS - key + 1 .. ' keys left over')
end
-- The reply is flat (nested tables cost Redis more to convert): now, then per decision either
-- its answer or one error reply.
hashes_read(wanted)
out[1] = now
local m = 1
key, a = 1, 3 + 5 * p
while a <= last do
  local cost, n, count = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  -- Decisions of one pair each (most, where a policy limits one subject) of a fixed window or
  -- gcra are taken at once: what `decide` would do, without its calls.
  local policy = n == 1 and policies[ARGV[a + 3]]
  local fast_decide = policy and policy.decide
  for k = key, key + n * count - 1, n do
    local fast = fast_decide and fast_decide(out, m, policy, fields_at[k], cost)
    local ok, result = true, fast
    if not fast then
      ok, result = pcall(decide, k, n, a + 3, cost, m)
    end
    if ok then
      m = result
    else
      -- Whatever the decision had written into `out` is dropped for its error.
      for j = m + 4 * n + 1, m + 2, -1 do
        out[j] = nil
      end
      -- redis.call raises a table {err = text}; Lua itself a string.
      m = m + 1
      out[m] = {err = type(result) == 'table' and tostring(result.err) or tostring(result)}
    end
  end
  key, a = key + n * count, a + 3 + n
end
hashes_flush(now)
return out
