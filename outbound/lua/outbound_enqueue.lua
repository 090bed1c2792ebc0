-- POST /v1/messages/outbound: queues a message once per idempotency_key of its property, and
-- never over another message's record: a client-chosen id whose message:<id> exists stays that
-- message's (a duplicate when it is an outbound message of the same property, else refused).
-- KEYS[1] idempotency:outbound:<pid>:<key> (message:<id> again when none)
-- KEYS[2] outbound:<channel>   KEYS[3] message:<id>
-- KEYS[4] idempotency:outbound:<key> (the key from before idempotency keys were scoped by
--         property, honoured when its message is this property's, docs/upgrading.md; KEYS[3]
--         again when none)
-- ARGV[1] id   ARGV[2] the message JSON   ARGV[3] idempotency key ('' = none)   ARGV[4] its TTL
-- ARGV[5] message TTL   ARGV[6] property_id   ARGV[7] channel   ARGV[8] conversation (conversation_of: named or derived)
-- ARGV[9] created_at   ARGV[10] to   ARGV[11] digest of the message JSON (the intake files
-- only this message under the id)   ARGV[12] prefix of message keys ('message:' with the prefix)
-- Returns {1, id} when queued, {0, first_id} when the key or the id was used before by this
-- property, {-1, 'id_taken'} when the id is another property's message or not an outbound one.
--#include legacy_key.lua
if ARGV[3] ~= '' then
  local first = redis.call('GET', KEYS[1]) or legacy_first(KEYS[4], ARGV[12], ARGV[6])
  if first then
    return {0, first}
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  local owner = redis.call('HMGET', KEYS[3], 'property_id', 'direction')
  if owner[1] == ARGV[6] and owner[2] == 'outbound' then
    return {0, ARGV[1]}
  end
  return {-1, 'id_taken'}
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[4])
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'status', 'queued', 'direction', 'outbound',
           'property_id', ARGV[6], 'channel', ARGV[7], 'conversation_id', ARGV[8],
           'created_at', ARGV[9], 'to', ARGV[10], 'digest', ARGV[11])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return {1, ARGV[1]}
