-- A change of a conversation's state by staff or an AI engine (docs/properties.md,
-- "Conversation state"): POST /v1/conversations/{id}/handoff|release|read and the WebSocket
-- frames takeover, release, read. Updates the record, appends the conversation.updated event
-- (seq, history) and publishes it; nothing is written when the conversation is unknown.
--
-- KEYS[1] conversation:<cid>   KEYS[2] property:<pid>:unread (hash cid -> unread)
-- KEYS[3] property:<pid>:seq   KEYS[4] property:<pid>:events
-- KEYS[5] property:<pid>:escalation
-- ARGV[1] conversation_id   ARGV[2] property_id   ARGV[3] change (handoff, release, read)
-- ARGV[4] by (the staff member's sub, or the adapter key's name)   ARGV[5] reason ('' none)
-- ARGV[6] confidence (a JSON number, '' none)   ARGV[7] assignee ('' none)
-- ARGV[8] now (epoch ms)   ARGV[9] now (RFC 3339)   ARGV[10] history length cap
-- ARGV[11] pub/sub channel of the property's events
-- Returns {1, seq, data JSON} (the conversation's state after the change), or {-1, 'not_found'}.
--#include event.lua
--#include conversation_state.lua
local seq, event, data = change_conversation(
    {record = KEYS[1], unread = KEYS[2], seq = KEYS[3], events = KEYS[4], escalation = KEYS[5]},
    {cid = ARGV[1], property_id = ARGV[2], change = ARGV[3], by = ARGV[4], reason = ARGV[5],
     confidence = ARGV[6], assignee = ARGV[7], now_ms = ARGV[8], ts = ARGV[9],
     history_max = ARGV[10]})
if not seq then
  if event == 'not_found' then
    return {-1, 'not_found'}
  end
  return redis.error_reply(event)
end
redis.call('PUBLISH', ARGV[11], event)
return {1, seq, data}
