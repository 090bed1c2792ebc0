-- Where a staff reply goes: the conversation's owner, channel and guest address, and the id of
-- the guest's latest message still among the recent ones (the reply's `reply_to`).
--
-- KEYS[1] conversation:<cid> (hash)   KEYS[2] conversation:<cid>:messages (list, newest first)
-- Returns {property_id, channel, guest, last_inbound_id or false}, or {} when the conversation
-- does not exist.
local record = redis.call('HMGET', KEYS[1], 'property_id', 'channel', 'guest')
if not record[1] then
  return {}
end
local last_inbound = false
for _, message in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  -- Bellhop wrote every entry; decoding only the first inbound one keeps this cheap.
  if string.find(message, '"direction":"inbound"', 1, true) then
    local ok, decoded = pcall(cjson.decode, message)
    if ok and type(decoded) == 'table' and decoded.direction == 'inbound' and
       type(decoded.id) == 'string' then
      last_inbound = decoded.id
      break
    end
  end
end
record[4] = last_inbound
return record
