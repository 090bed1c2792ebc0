-- A conversation's owner and its recent messages (GET /v1/conversations/{id}/messages), read
-- together so the caller can check the property before answering.
--
-- KEYS[1] conversation:<cid> (hash)   KEYS[2] conversation:<cid>:messages (list, newest first)
-- ARGV[1] how many messages (newest first)
-- Returns {property_id, {message JSON…}}, or {} when the conversation does not exist.
local property = redis.call('HGET', KEYS[1], 'property_id')
if not property then
  return {}
end
return {property, redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)}
