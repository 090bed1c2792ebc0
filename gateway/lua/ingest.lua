-- The atomic ingest of one guest message (POST /v1/messages/inbound and channel webhooks).
-- Either all of it happens or none: dedup, queue, status, event seq, history, publish, and the
-- conversation's index entry, record and recent messages.
--
-- KEYS[1] dedup:<channel>:<external_id>   KEYS[2] inbound:messages
-- KEYS[3] message:<id>                    KEYS[4] property:<pid>:seq
-- KEYS[5] property:<pid>:events (stream)  KEYS[6] property:<pid>:conversation_index (zset)
-- KEYS[7] conversation:<cid> (hash)       KEYS[8] conversation:<cid>:messages (list)
-- ARGV[1] id               ARGV[2] envelope JSON      ARGV[3] dedup TTL (s)
-- ARGV[4] message TTL (s)  ARGV[5] pub/sub channel    ARGV[6] history length (approximate cap)
-- ARGV[7] event JSON after '{"seq":N,'                ARGV[8] property_id
-- ARGV[9] channel          ARGV[10] conversation_id   ARGV[11] received_at (RFC 3339)
-- ARGV[12] received_at (epoch ms)                      ARGV[13] guest address (from)
-- ARGV[14] guest name ('' if none)                     ARGV[15] conversation TTL (s)
-- ARGV[16] recent messages kept per conversation
-- Returns {1, id, seq} when queued, {0, first_id} for a duplicate external id.
--#include append_event.lua
local first = redis.call('GET', KEYS[1])
if first then
  return {0, first}
end
-- The step that can fail (XADD needs an id above the stream's last) goes first: Redis does not
-- roll a script back, so nothing else may be written before it succeeds.
local seq, event = append_event(KEYS[4], KEYS[5], ARGV[6], ARGV[7])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'status', 'queued', 'direction', 'inbound',
           'property_id', ARGV[8], 'channel', ARGV[9], 'conversation_id', ARGV[10],
           'received_at', ARGV[11])
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('ZADD', KEYS[6], ARGV[12], ARGV[10])
-- The fields that change with every message; the rest only when the record is new (3 new
-- fields), or to keep a guest name that a later message repeats.
if redis.call('HSET', KEYS[7], 'last_message_at', ARGV[11], 'last_message_id', ARGV[1],
              'last_inbound_id', ARGV[1]) == 3 then
  redis.call('HSET', KEYS[7], 'conversation_id', ARGV[10], 'property_id', ARGV[8],
             'channel', ARGV[9], 'guest', ARGV[13])
end
if ARGV[14] ~= '' then  -- a message without a name keeps the one known
  redis.call('HSET', KEYS[7], 'guest_name', ARGV[14])
end
redis.call('EXPIRE', KEYS[7], ARGV[15])
-- Trimmed back to the cap only when half as much again has piled up: one LTRIM in many.
local cap = tonumber(ARGV[16])
if redis.call('LPUSH', KEYS[8], ARGV[2]) > cap + math.floor(cap / 2) then
  redis.call('LTRIM', KEYS[8], 0, cap - 1)
end
redis.call('EXPIRE', KEYS[8], ARGV[15])
redis.call('PUBLISH', ARGV[5], event)
return {1, ARGV[1], seq}
