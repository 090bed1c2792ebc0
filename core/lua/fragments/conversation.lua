-- Included (at build time, by cmake/embed_lua.cmake) by the scripts that add a message to a
-- conversation: ingest.lua and staff_reply.lua.
--
-- Adds `message` (JSON) to its conversation: the property's index entry (score = the
-- message's time, epoch ms) and the recent-messages list (newest first, trimmed back to `cap`
-- once half as much again has piled up: one LTRIM in many). The record's fixed fields and the
-- lifetime of record and list are written only when the record is new or its last renewal
-- (`refreshed_at`, read by the caller) is older than 1/30 of the lifetime: a conversation
-- lives its full lifetime after its last message, less at most a day of the default 30. The
-- conversation's last message and activity are the list's head and the index score, so a
-- message writes no record field at all.
--
-- fields: extra record fields to set now (a table of name, value, …), written together with a
-- renewal if one is due, else on their own. Returns true when it renewed (wrote refreshed_at).
local function add_to_conversation(index_key, record_key, list_key, cid, at_ms, message,
                                   ttl_s, cap_s, refreshed_at, fields)
  redis.call('ZADD', index_key, at_ms, cid)
  local cap = tonumber(cap_s)
  if redis.call('LPUSH', list_key, message) > cap + math.floor(cap / 2) then
    redis.call('LTRIM', list_key, 0, cap - 1)
  end
  local ttl = tonumber(ttl_s)
  if not refreshed_at or tonumber(refreshed_at) < tonumber(at_ms) - ttl * 1000 / 30 then
    redis.call('HSET', record_key, 'refreshed_at', at_ms, unpack(fields))
    redis.call('EXPIRE', record_key, ttl_s)
    redis.call('EXPIRE', list_key, ttl_s)
    return true
  end
  if #fields > 0 then
    redis.call('HSET', record_key, unpack(fields))
  end
  return false
end
