-- Returns the messages of a dead consumer to the inbound queue (see docs/ai-engine.md).
-- KEYS[1] inbound:messages:processing:<consumer>   KEYS[2] inbound:messages:heartbeat:<consumer>
-- KEYS[3] inbound:messages   KEYS[4] inbound:messages:dead   KEYS[5] inbound:messages:deliveries
-- KEYS[6] inbound:messages:consumers (the registry of consumer names)
-- ARGV[1] max_deliveries   ARGV[2] lifetime of the deliveries hash in seconds (0 = none)
-- ARGV[3] the consumer's name
-- Returns {requeued, {dead elements}, {their delivery counts}}; requeued is -1 when the
-- consumer's heartbeat exists (it is alive, nothing was touched). A consumer without heartbeat
-- leaves the registry: it SADDs itself again with its next heartbeat if it comes back.
--
-- Counting: the hash holds, per message id, how many deliveries failed. Finding a message in a
-- dead consumer's processing list means one delivery failed; when that makes max_deliveries
-- failures the message goes to the dead list (and its entry is deleted), else back to the queue.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1, {}, {}}
end
redis.call('SREM', KEYS[6], ARGV[3])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
if #items == 0 then
  return {0, {}, {}}
end
local max_deliveries = tonumber(ARGV[1])

local function id_of(element)
  local ok, decoded = pcall(cjson.decode, element)
  if ok and type(decoded) == 'table' and type(decoded.id) == 'string' and decoded.id ~= '' then
    return decoded.id
  end
  return redis.sha1hex(element)
end

-- The processing list holds the newest take at the left. RPUSHing from left to right leaves the
-- oldest take at the right end of the queue, where consumers take next: the original FIFO order.
local requeue, dead, counts = {}, {}, {}
for i = 1, #items do
  local element = items[i]
  local id = id_of(element)
  local failed = redis.call('HINCRBY', KEYS[5], id, 1)
  if failed >= max_deliveries then
    redis.call('HDEL', KEYS[5], id)
    dead[#dead + 1] = element
    counts[#counts + 1] = failed
  else
    requeue[#requeue + 1] = element
  end
end
-- unpack() is bounded by the Lua stack: push in slices.
for first = 1, #requeue, 1000 do
  redis.call('RPUSH', KEYS[3], unpack(requeue, first, math.min(first + 999, #requeue)))
end
-- Oldest failure first, so the dead list reads like the queue (newest at the left).
for i = #dead, 1, -1 do
  redis.call('LPUSH', KEYS[4], dead[i])
end
redis.call('DEL', KEYS[1])
local ttl = tonumber(ARGV[2])
if ttl and ttl > 0 then
  redis.call('EXPIRE', KEYS[5], ttl)
end
return {#requeue, dead, counts}
