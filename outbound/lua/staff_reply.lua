-- A staff member's reply from a dashboard (WebSocket `reply`), queued once per client_msg_id.
-- Like ingest.lua, everything or nothing: idempotency record, outbound queue, status record,
-- event seq, history, the conversation's index entry and recent messages, publish.
--
-- KEYS[1] idempotency:reply:<pid>:<sub>:<client_msg_id>   KEYS[2] outbound:<channel>
-- KEYS[3] message:<id>                    KEYS[4] property:<pid>:seq
-- KEYS[5] property:<pid>:events           KEYS[6] property:<pid>:conversation_index
-- KEYS[7] conversation:<cid>              KEYS[8] conversation:<cid>:messages
-- ARGV[1] id               ARGV[2] outbound message JSON (also the data of its event)
-- ARGV[3] idempotency TTL (s)                              ARGV[4] message TTL (s)
-- ARGV[5] pub/sub channel  ARGV[6] history length cap      ARGV[7] property_id
-- ARGV[8] channel          ARGV[9] conversation_id
-- ARGV[10] created_at (RFC 3339, also the event's ts)      ARGV[11] created_at (epoch ms)
-- ARGV[12] sub (staff member)
-- KEYS[9] idempotency:reply:<sub>:<client_msg_id> (the key from before idempotency keys were
--         scoped by property, honoured when its message is this property's, docs/upgrading.md)
-- ARGV[13] conversation TTL (s)                            ARGV[14] recent messages kept
-- ARGV[15] digest of the message as the intake files it   ARGV[16] prefix of message keys
-- KEYS[10] property:<pid>:escalation: an answer ends the guest's wait for staff and allows the
--          next escalation (docs/properties.md, "Escalation")
-- Returns {1, id, seq} when queued, {0, first_id} when this client_msg_id was queued before.
--#include event.lua
--#include conversation.lua
--#include legacy_key.lua
local first = redis.call('GET', KEYS[1]) or legacy_first(KEYS[9], ARGV[16], ARGV[7])
if first then
  return {0, first}
end
-- Only the conversation's own record says where a reply goes; it must still exist.
local record = redis.call('HMGET', KEYS[7], 'property_id', 'refreshed_at')
if record[1] ~= ARGV[7] then
  return {-1, 'not_found'}
end
local seq, event = append_event(KEYS[4], KEYS[5], ARGV[6], ARGV[7], 'message.created', ARGV[2],
                                ARGV[10])
if not seq then
  return redis.error_reply(event)
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'status', 'queued', 'direction', 'outbound',
           'property_id', ARGV[7], 'channel', ARGV[8], 'conversation_id', ARGV[9],
           'created_at', ARGV[10], 'sent_by', ARGV[12], 'digest', ARGV[15])
redis.call('EXPIRE', KEYS[3], ARGV[4])
-- Answered: the guest waits no more (escalate.lua may alert again after the next message).
add_to_conversation(KEYS[6], KEYS[7], KEYS[8], ARGV[9], ARGV[11], ARGV[2], ARGV[13], ARGV[14],
                    record[2], {})
redis.call('ZREM', KEYS[10], ARGV[9])
redis.call('HDEL', KEYS[7], 'escalated_at')
redis.call('PUBLISH', ARGV[5], event)
return {1, ARGV[1], seq}
