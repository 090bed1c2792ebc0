-- A conversation's owner and its recent messages (GET /v1/conversations/{id}/messages), read
-- together so the caller can check the property before answering, with each outbound
-- message's delivery status from its record (message:<id>) and the AI's held suggestions.
--
-- KEYS[1] conversation:<cid> (hash)   KEYS[2] conversation:<cid>:messages (list, newest first)
-- KEYS[3] conversation:<cid>:held (list of message.status data, newest first)
-- ARGV[1] how many messages (newest first)   ARGV[2] the record key prefix ("<prefix>message:")
-- Returns {property_id, {message JSON…}, {status…}, {held JSON…}}, or {} when the conversation
-- does not exist. status[i] is {status, reason} for the i-th message when it is outbound and
-- has a record, else nil. A stored message is never trusted: one that is not JSON, or names no
-- id of at most 64 bytes, gets no status (the caller skips what is not a JSON object).
local property = redis.call('HGET', KEYS[1], 'property_id')
if not property then
  return {}
end
local messages = redis.call('LRANGE', KEYS[2], 0, tonumber(ARGV[1]) - 1)
local statuses = {}
for i, raw in ipairs(messages) do
  local status = false
  -- Bellhop wrote every entry: only what names itself outbound is decoded (guest messages are
  -- most of them).
  if string.find(raw, '"direction":"outbound"', 1, true) then
    local ok, m = pcall(cjson.decode, raw)
    if ok and type(m) == 'table' and m.direction == 'outbound' and type(m.id) == 'string'
        and #m.id > 0 and #m.id <= 64 then
      local r = redis.call('HMGET', ARGV[2] .. m.id, 'status', 'reason')
      if r[1] then
        status = {r[1], r[2] or ''}
      end
    end
  end
  statuses[i] = status
end
return {property, messages, statuses, redis.call('LRANGE', KEYS[3], 0, 9)}
