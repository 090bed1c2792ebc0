-- An element of outbound:<channel> that is not a message Bellhop can send (not JSON, a field
-- missing or wrong): off the processing list, onto the dead list with the reason.
-- KEYS[1] processing list   KEYS[2] dead list   KEYS[3] stats (hash)
-- ARGV[1] the element as taken   ARGV[2] the dead letter JSON
-- Returns 1, or 0 when the element had left the processing list (recovered by another process).
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'invalid', 1)
return 1
