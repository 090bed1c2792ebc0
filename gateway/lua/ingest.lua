-- The atomic ingest of one guest message (POST /v1/messages/inbound and channel webhooks).
-- Either all of it happens or none: dedup, queue, status record, event seq, history, publish.
--
-- KEYS[1] dedup:<channel>:<external_id>   KEYS[2] inbound:messages
-- KEYS[3] message:<id>                    KEYS[4] property:<pid>:seq
-- KEYS[5] property:<pid>:events (stream)
-- ARGV[1] id            ARGV[2] envelope JSON     ARGV[3] dedup TTL (s)
-- ARGV[4] message TTL (s)                         ARGV[5] pub/sub channel of the property
-- ARGV[6] history length (approximate cap)        ARGV[7] event JSON after '{"seq":N,'
-- ARGV[8..] field/value pairs of the message:<id> status record
-- Returns {1, id, seq} when queued, {0, first_id} for a duplicate external id.
local first = redis.call('GET', KEYS[1])
if first then
  return {0, first}
end
-- The step that can fail (XADD needs an id above the stream's last) goes first: Redis does not
-- roll a script back, so nothing else may be written before it succeeds.
local seq = redis.call('INCR', KEYS[4])
-- Only a fresh counter (seq 1: the key was lost) can be behind its stream; checking just then
-- keeps XREVRANGE off the hot path.
local last = seq == 1 and redis.call('XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1) or {}
if #last > 0 then
  local top = tonumber(string.match(last[1][1], '^(%d+)'))
  if top and top >= seq then
    seq = top + 1
    redis.call('SET', KEYS[4], seq)
  end
end
local event = '{"seq":' .. string.format('%d', seq) .. ',' .. ARGV[7]
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], string.format('%d-0', seq), 'event', event)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', ARGV[5], event)
return {1, ARGV[1], seq}
