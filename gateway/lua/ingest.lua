-- The atomic ingest of one guest message (POST /v1/messages/inbound and channel webhooks).
-- Either all of it happens or none: dedup, queue, status, event seq, history, publish, and the
-- conversation's index entry, recent messages and (when new, renamed or due for renewal) record.
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
--#include conversation.lua
-- The dedup key first, set only if absent (one command for the check and the write).
local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'GET', 'EX', ARGV[3])
if first then
  return {0, first}
end
local seq, event = append_event(KEYS[4], KEYS[5], ARGV[6], ARGV[7])
if not seq then
  -- Nothing but the dedup key was written: without it a retry queues the message.
  redis.call('DEL', KEYS[1])
  return redis.error_reply(event)
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'status', 'queued', 'direction', 'inbound',
           'property_id', ARGV[8], 'channel', ARGV[9], 'conversation_id', ARGV[10],
           'received_at', ARGV[11])
redis.call('EXPIRE', KEYS[3], ARGV[4])
local record = redis.call('HMGET', KEYS[7], 'refreshed_at', 'guest_name')
local fields = {}
if not record[1] then  -- a new record (or one written before refreshed_at existed)
  fields = {'conversation_id', ARGV[10], 'property_id', ARGV[8], 'channel', ARGV[9],
            'guest', ARGV[13]}
end
if ARGV[14] ~= '' and record[2] ~= ARGV[14] then  -- a message without a name keeps the known one
  fields[#fields + 1] = 'guest_name'
  fields[#fields + 1] = ARGV[14]
end
add_to_conversation(KEYS[6], KEYS[7], KEYS[8], ARGV[10], ARGV[12], ARGV[2], ARGV[15], ARGV[16],
                    record[1], fields)
redis.call('PUBLISH', ARGV[5], event)
return {1, ARGV[1], seq}
