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
-- Returns {now (ms), then per decision either {allowed (1/0), then per pair: allowed (1/0),
-- remaining, retry_after (ms, -1 = never: cost above the policy's capacity), reset (ms)} or an
-- error reply: that decision could not be taken (a key of another type, a bad argument) and
-- consumed nothing; the others are unaffected}.
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
-- Every pair is read before anything is written, so an error (raised by redis.call, caught by
-- the pcall below) leaves the decision's keys as they were.
local function decide(first, n, a, cost)
  local all_allowed = true
  local out = {0}
  local consumers = {}
  for i = 0, n - 1 do
    local policy = policies[ARGV[a + i]]
    if not policy then
      error('no rate-limit policy ' .. tostring(ARGV[a + i]))
    end
    if not policy.algorithm then
      error('unknown rate-limit algorithm: ' .. tostring(policy.name))
    end
    local allowed, remaining, retry, reset, consume =
        policy.algorithm(KEYS[first + i], policy.limit, policy.window, policy.burst, cost, now)
    all_allowed = all_allowed and allowed
    consumers[i + 1] = consume
    out[#out + 1] = allowed and 1 or 0
    out[#out + 1] = math.max(0, math.floor(remaining))
    out[#out + 1] = retry < 0 and -1 or math.ceil(retry)
    out[#out + 1] = math.max(0, math.ceil(reset))
  end
  if all_allowed then
    out[1] = 1
    for i = 1, cost > 0 and n or 0 do
      consumers[i]()
    end
  end
  return out
end

-- The layout is the library's own: a slip there is no one decision's fault, and it is found
-- before any decision consumes, so a refused call changed nothing.
local decisions = {}  -- {first key, pairs, first policy argument, cost}
local key, a = 1, 3 + 4 * p
local costs = {}  -- by text: most decisions of a call have one cost
while a <= #ARGV do
  local cost = costs[ARGV[a]]
  if not cost then
    cost = tonumber(ARGV[a])
    if cost then
      costs[ARGV[a]] = cost
    end
  end
  local n = tonumber(ARGV[a + 1])
  if not cost or not n or n < 1 or key + n - 1 > #KEYS or a + 1 + n > #ARGV then
    return redis.error_reply('malformed rate-limit batch at argument ' .. a)
  end
  decisions[#decisions + 1] = {key, n, a + 2, cost}
  key, a = key + n, a + 2 + n
end
if key - 1 ~= #KEYS then
  return redis.error_reply('malformed rate-limit batch: ' .. #KEYS - key + 1 .. ' keys left over')
end
local out = {now}
for _, d in ipairs(decisions) do
  local ok, result = pcall(decide, d[1], d[2], d[3], d[4])
  if ok then
    out[#out + 1] = result
  else
    -- redis.call raises a table {err = text}; Lua itself a string.
    out[#out + 1] = {err = type(result) == 'table' and tostring(result.err) or tostring(result)}
  end
end
return out
