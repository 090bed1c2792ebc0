-- POST /v1/messages/outbound: queues a message once per idempotency_key.
-- KEYS[1] idempotency:outbound:<key> (message:<id> again when none)   KEYS[2] outbound:<channel>
-- KEYS[3] message:<id>
-- ARGV[1] id   ARGV[2] the message JSON   ARGV[3] idempotency key ('' = none)   ARGV[4] its TTL
-- ARGV[5] message TTL   ARGV[6] property_id   ARGV[7] channel   ARGV[8] conversation_id
-- ARGV[9] created_at   ARGV[10] to
-- Returns {1, id} when queued, {0, first_id} when the key was used before.
if ARGV[3] ~= '' then
  local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'GET', 'EX', ARGV[4])
  if first then
    return {0, first}
  end
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'id', ARGV[1], 'status', 'queued', 'direction', 'outbound',
           'property_id', ARGV[6], 'channel', ARGV[7], 'conversation_id', ARGV[8],
           'created_at', ARGV[9], 'to', ARGV[10])
redis.call('EXPIRE', KEYS[3], ARGV[5])
return {1, ARGV[1]}
