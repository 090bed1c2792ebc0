-- Publishes one dashboard event of a property with the property's next seq.
-- KEYS[1] property:<id>:seq   KEYS[2] property:<id>:events (stream)
-- ARGV[1] pub/sub channel property:<id>:conversations   ARGV[2] history length (XADD MAXLEN ~)
-- ARGV[3] property_id   ARGV[4] event name   ARGV[5] data (one JSON object)   ARGV[6] ts
-- Returns the seq.
--#include event.lua
local seq, event = append_event(KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if not seq then
  return redis.error_reply(event)
end
redis.call('PUBLISH', ARGV[1], event)
return seq
