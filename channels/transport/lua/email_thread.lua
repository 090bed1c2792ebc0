-- The thread an email reply belongs to: the subject, Message-ID and References of the guest's
-- email it answers (its `reply_to`), or of the guest's latest email among the conversation's
-- recent messages when the reply names none (or one no longer there).
--
-- KEYS[1] conversation:<cid>:messages (list of envelopes, newest first)
-- KEYS[2] conversation:<cid> (hash)
-- ARGV[1] the inbound id the reply answers ('' = none)   ARGV[2] the reply's property_id
-- Returns {subject, message_id, references} ('' for what the email did not have), or {} when
-- the conversation holds no guest email, or is not the reply's property's (a message that names
-- another property's conversation learns nothing of it).
if redis.call('HGET', KEYS[2], 'property_id') ~= ARGV[2] then
  return {}
end
local latest = nil
for _, message in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if string.find(message, '"direction":"inbound"', 1, true) then
    local ok, m = pcall(cjson.decode, message)
    if ok and type(m) == 'table' and m.direction == 'inbound' and type(m.metadata) == 'table' and
       type(m.metadata.message_id) == 'string' then
      if latest == nil then
        latest = m
      end
      if ARGV[1] == '' or m.id == ARGV[1] then
        latest = m
        break
      end
    end
  end
end
if latest == nil then
  return {}
end
local function text(v)
  return type(v) == 'string' and v or ''
end
local md = latest.metadata
return {text(md.subject), md.message_id, text(md.references)}
