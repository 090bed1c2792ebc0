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
-- ARGV[2]      p, the number of policies the call uses, then 4 arguments per policy:
--              algorithm (fixed_window | sliding_window | gcra), limit, window (ms), burst (gcra;
--              ignored otherwise)
-- then per decision: cost (integer >= 0; 0 only looks), n (its number of pairs), then per pair
--              the index of its policy (1 .. p)
-- Returns a flat array: now (ms), then per decision either its answer, allowed (1/0) followed
-- by 4 figures per pair: allowed (1/0), remaining, retry_after (ms, -1 = never: cost above the
-- policy's capacity), reset (ms); or one error reply: that decision could not be taken (a key
-- of another type, a bad argument) and consumed nothing; the others are unaffected.
-- With a test clock, time does not pass for Redis as it does for the keys' lifetimes: they
-- get this much longer, so a slow machine cannot expire a key between two checks of a test.
local expiry_slack = 0
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
local policies = {}
local p = tonumber(ARGV[2]) or -1
if p < 0 or 2 + 4 * p > #ARGV then
  return redis.error_reply('malformed rate-limit batch: policies')
end
for i = 1, p do
  local a = 3 + 4 * (i - 1)
  policies[tostring(i)] = {algorithm = algorithms[ARGV[a]], name = ARGV[a], limit = tonumber(ARGV[a + 1]),
                           window = tonumber(ARGV[a + 2]), burst = tonumber(ARGV[a + 3])}
end

-- One decision: its pairs are KEYS[first .. first + n - 1], their policies' indexes ARGV[a ..].
-- Its answer goes into `out` from out[m + 1]: allowed, then 4 figures per pair; returns the new
-- length. Every pair is read before anything is written, so an error (raised by redis.call,
-- caught by the pcall below) leaves the decision's keys as they were. The one write that comes
-- with a read, the last pair creating its key (`write_now`), happens after every other pair was
-- read and allowed, and only when the decision then consumes: nothing after it can fail.
local out = {0}
local floor, ceil = math.floor, math.ceil
-- SET … NX GET came with Redis 7.0; before it, every pair is read first (GET), then written.
local write_now = (tonumber(redis.REDIS_VERSION_NUM) or 0) >= 0x070000
local function decide(first, n, a, cost, m)
  local all_allowed = true
  local head = m + 1
  local consumers = n > 1 and {} or nil
  local consume
  m = head
  for i = 0, n - 1 do
    local policy = policies[ARGV[a + i]]
    if not policy then
      error('no rate-limit policy ' .. tostring(ARGV[a + i]))
    end
    if not policy.algorithm then
      error('unknown rate-limit algorithm: ' .. tostring(policy.name))
    end
    -- The last pair, the others allowing: if it allows too, the decision consumes, so a new
    -- key may be created at once (the algorithms' `write_now`).
    local allowed, remaining, retry, reset
    allowed, remaining, retry, reset, consume =
        policy.algorithm(KEYS[first + i], policy.limit, policy.window, policy.burst, cost, now,
                         write_now and cost > 0 and all_allowed and i == n - 1)
    all_allowed = all_allowed and allowed
    if consumers then
      consumers[i + 1] = consume
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
      if consumers then
        for i = 1, n do
          consumers[i]()
        end
      else
        consume()
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
local costs = {}  -- by text: most decisions of a call have one cost
local last = #ARGV
local key, a = 1, 3 + 4 * p
while a <= last do
  local cost = costs[ARGV[a]]
  if not cost then
    cost = tonumber(ARGV[a])
    if cost then
      costs[ARGV[a]] = cost
    end
  end
  local n = tonumber(ARGV[a + 1])
  if not cost or not n or n < 1 or key + n - 1 > #KEYS or a + 1 + n > last then
    return redis.error_reply('malformed rate-limit batch at argument ' .. a)
  end
  key, a = key + n, a + 2 + n
end
if key - 1 ~= #KEYS then
  return redis.error_reply('malformed rate-limit batch: ' .. #KEYS - key + 1 .. ' keys left over')
end
-- The reply is flat (nested tables cost Redis more to convert): now, then per decision either
-- its answer or one error reply.
out[1] = now
local m = 1
key, a = 1, 3 + 4 * p
while a <= last do
  local n = tonumber(ARGV[a + 1])
  local ok, result = pcall(decide, key, n, a + 2, costs[ARGV[a]], m)
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
  key, a = key + n, a + 2 + n
end
return out
