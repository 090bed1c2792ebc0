-- The escalation of one property (docs/properties.md, "Escalation"): every conversation with
-- staff whose guest has waited, unread and unanswered, since before the cutoff notifies the
-- property's escalation contact once (an email and/or an SMS through the outbound queues) and
-- gets a conversation.updated event with change "escalated". Nothing more for it until staff
-- read or answer it (they clear escalated_at; ingest.lua starts no new wait while it is set).
--
-- KEYS[1] property:<pid>:escalation (zset cid -> when the wait began, epoch ms)
-- KEYS[2] property:<pid>:unread   KEYS[3] property:<pid>:seq   KEYS[4] property:<pid>:events
-- KEYS[5] outbound:email   KEYS[6] outbound:sms
-- ARGV[1] property_id   ARGV[2] cutoff (epoch ms: waits that began at or before it are due)
-- ARGV[3] now (epoch ms)   ARGV[4] now (RFC 3339)   ARGV[5] history length cap
-- ARGV[6] pub/sub channel of the property's events
-- ARGV[7] prefix of the conversation records: key_space::conversation("")
-- ARGV[8] contact email ('' none)   ARGV[9] contact SMS number ('' none)
-- ARGV[10] the property's display name   ARGV[11] most conversations per call
-- Returns the number of conversations escalated.
--
-- The records are read by names built here: which ones is only known after the range read
-- (Bellhop does not run on Redis Cluster).
--#include event.lua
--#include conversation_state.lua
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0,
                       tonumber(ARGV[11]))
local escalated = 0

local function notify(list, channel, to, cid, guest, waited_min)
  local text = 'A guest (' .. guest .. ') has waited ' .. waited_min ..
               ' min for an answer from staff at ' .. ARGV[10] .. ' (conversation ' .. cid .. ').'
  -- The key names the channel: idempotency keys are per property, not per channel, and the
  -- email and the SMS of one escalation are two messages.
  local message = {property_id = ARGV[1], channel = channel, to = to, text = text, priority = 2,
                   source = 'staff',
                   idempotency_key = 'escalation:' .. cid .. ':' .. channel .. ':' .. ARGV[3]}
  if channel == 'email' then
    message.extras = {subject = 'Guest waiting at ' .. ARGV[10]}
  end
  redis.call('LPUSH', list, cjson.encode(message))
end

for i = 1, #due, 2 do
  local cid, since = due[i], tonumber(due[i + 1])
  local record = ARGV[7] .. cid
  local state = redis.pcall('HMGET', record, 'property_id', 'mode', 'unread', 'escalated_at',
                            'guest')
  if type(state) ~= 'table' or state.err then
    state = {}  -- not a record Bellhop wrote: dropped from the waiting set
  end
  if state[1] ~= ARGV[1] or state[2] ~= 'human' or (tonumber(state[3]) or 0) == 0 or state[4] then
    redis.call('ZREM', KEYS[1], cid)  -- read, answered, released or gone in between
  else
    local seq, event = change_conversation(
        {record = record, unread = KEYS[2], seq = KEYS[3], events = KEYS[4], escalation = KEYS[1]},
        {cid = cid, property_id = ARGV[1], change = 'escalated', by = 'bellhop', reason = '',
         confidence = '', assignee = '', now_ms = ARGV[3], ts = ARGV[4], history_max = ARGV[5]})
    if seq then
      redis.call('PUBLISH', ARGV[6], event)
      local waited = tostring(math.floor((tonumber(ARGV[3]) - since) / 60000))
      if ARGV[8] ~= '' then
        notify(KEYS[5], 'email', ARGV[8], cid, state[5] or '?', waited)
      end
      if ARGV[9] ~= '' then
        notify(KEYS[6], 'sms', ARGV[9], cid, state[5] or '?', waited)
      end
      escalated = escalated + 1
    end
  end
end
return escalated
