-- The Redis side of GET /v1/admin/overview (docs/console.md, "Admin API"), read together: the
-- inbound queue and its AI engines, the messages in and out per minute, the accounts' health.
-- KEYS[1] inbound:messages   KEYS[2] inbound:messages:dead   KEYS[3] inbound:unrouted
-- KEYS[4] inbound:messages:consumers
-- KEYS[5 .. 4 + ARGV[4]] stats:minute:<epoch minute>, oldest first
-- the keys after them: account_health:<channel>, one per configured channel
-- ARGV[1] prefix of processing lists ('inbound:messages:processing:')
-- ARGV[2] prefix of heartbeat keys ('inbound:messages:heartbeat:')
-- ARGV[3] most engines listed   ARGV[4] how many minute keys
-- Returns {waiting, dead, unrouted, engines_total, {consumer, in_flight, heartbeat PTTL, …},
--          {in, out, …} (one pair per minute, false when none), {HGETALL of each health hash}}
-- An engine's heartbeat PTTL is -2 when the key is gone (the engine is not alive) and -1 when
-- it has no expiry. The consumers listed are the first ARGV[3] by name.
local max = tonumber(ARGV[3])
local minutes = tonumber(ARGV[4])
local total = redis.call('SCARD', KEYS[4])
local names
if total <= 1000 then
  names = redis.call('SMEMBERS', KEYS[4])
else  -- a set that large is not engines but debris: a sample keeps the answer bounded
  names = redis.call('SRANDMEMBER', KEYS[4], max)
end
table.sort(names)
local engines = {}
for i = 1, math.min(#names, max) do
  local name = names[i]
  engines[#engines + 1] = name
  engines[#engines + 1] = redis.call('LLEN', ARGV[1] .. name)
  engines[#engines + 1] = redis.call('PTTL', ARGV[2] .. name)
end
local counts = {}
for i = 1, minutes do
  local v = redis.call('HMGET', KEYS[4 + i], 'in', 'out')
  counts[#counts + 1] = v[1]
  counts[#counts + 1] = v[2]
end
local health = {}
for i = 5 + minutes, #KEYS do
  health[#health + 1] = redis.call('HGETALL', KEYS[i])
end
return {redis.call('LLEN', KEYS[1]), redis.call('LLEN', KEYS[2]), redis.call('LLEN', KEYS[3]),
        total, engines, counts, health}
