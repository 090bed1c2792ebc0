-- One rate-limit decision over one or more (policy, key) pairs: `cost` is consumed from all of
-- them, or, when any one refuses, from none. Time is Redis's own (TIME), so the clocks of the
-- processes sharing this Redis do not matter.
--
-- KEYS[i]      ratelimit:<policy>:<key>, one per pair
-- ARGV[1]      cost (integer >= 0; 0 only looks)
-- ARGV[2]      '' for Redis's clock; a time in ms for tests only (the library sets it only when
--              a test clock is installed)
-- ARGV[3 + 4(i - 1) ...] per pair: algorithm (fixed_window | sliding_window | gcra), limit,
--              window (ms), burst (gcra; ignored otherwise)
-- Returns {allowed (1/0), now (ms), then per pair: allowed (1/0), remaining, retry_after (ms,
-- -1 = never: cost above the policy's capacity), reset (ms)}.
-- With a test clock, time does not pass for Redis as it does for the keys' lifetimes: they
-- get this much longer, so a slow machine cannot expire a key between two checks of a test.
local expiry_slack = 0
--#include fixed_window.lua
--#include sliding_window.lua
--#include gcra.lua
local algorithms = {fixed_window = fixed_window, sliding_window = sliding_window, gcra = gcra}

local cost = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if now then
  expiry_slack = 600000
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local all_allowed = true
local out = {0, now}
local consumers = {}
for i = 1, #KEYS do
  local a = 3 + (i - 1) * 4
  local algorithm = algorithms[ARGV[a]]
  if not algorithm then
    return redis.error_reply('unknown rate-limit algorithm: ' .. tostring(ARGV[a]))
  end
  local allowed, remaining, retry, reset, consume =
      algorithm(KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
                cost, now)
  all_allowed = all_allowed and allowed
  consumers[i] = consume
  out[#out + 1] = allowed and 1 or 0
  out[#out + 1] = math.max(0, math.floor(remaining))
  out[#out + 1] = retry < 0 and -1 or math.ceil(retry)
  out[#out + 1] = math.max(0, math.ceil(reset))
end
if all_allowed then
  out[1] = 1
  for i = 1, cost > 0 and #KEYS or 0 do
    consumers[i]()
  end
end
return out
