-- Files one element that the intake moved from outbound:<channel> into this process's
-- processing list as ready to send, ordered by priority (lower first) then arrival.
-- KEYS[1] processing list   KEYS[2] ready (zset)   KEYS[3] arrivals counter
-- KEYS[4] message:<id>      KEYS[5] idempotency:outbound:<key> (KEYS[4] again when none)
-- KEYS[6] stats (hash)   KEYS[7] delayed (zset)
-- ARGV[1] the element as taken   ARGV[2] the message as Bellhop sends it ('{"id":…,"priority":N,…}')
-- ARGV[3] id   ARGV[4] priority   ARGV[5] idempotency key ('' = none)   ARGV[6] its TTL (s)
-- ARGV[7] message TTL (s)   ARGV[8] property_id   ARGV[9] channel   ARGV[10] conversation_id
-- ARGV[11] created_at   ARGV[12] to   ARGV[13] due (epoch ms) when delayed (delay_ms), else 0
-- Returns {1, id} when filed, {0, first_id} when the idempotency key was used by another
-- message (this one is dropped), {-1} when the element had left the processing list (another
-- process recovered it: that one files it).
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return {-1}
end
if ARGV[5] ~= '' then
  -- The same message coming back (recovered after a crash) keeps its own key.
  local first = redis.call('SET', KEYS[5], ARGV[3], 'NX', 'GET', 'EX', ARGV[6])
  if first and first ~= ARGV[3] then
    redis.call('HINCRBY', KEYS[6], 'duplicates', 1)
    return {0, first}
  end
end
if tonumber(ARGV[13]) > 0 then
  redis.call('ZADD', KEYS[7], ARGV[13], ARGV[2])
else
  redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) * 1e12 + redis.call('INCR', KEYS[3]), ARGV[2])
end
if redis.call('EXISTS', KEYS[4]) == 0 then  -- a staff reply's record exists already
  redis.call('HSET', KEYS[4], 'id', ARGV[3], 'status', 'queued', 'direction', 'outbound',
             'property_id', ARGV[8], 'channel', ARGV[9], 'conversation_id', ARGV[10],
             'created_at', ARGV[11], 'to', ARGV[12])
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end
redis.call('HINCRBY', KEYS[6], 'accepted', 1)
return {1, ARGV[3]}
