-- Files one element that the intake moved from outbound:<channel> into this process's
-- processing list as ready to send, ordered by priority (lower first) then arrival.
-- KEYS[1] processing list   KEYS[2] ready (zset)   KEYS[3] arrivals counter
-- KEYS[4] message:<id>      KEYS[5] idempotency:outbound:<pid>:<key> (KEYS[4] again when none)
-- KEYS[6] stats (hash)   KEYS[7] delayed (zset)   KEYS[8] dead list
-- KEYS[9] idempotency:outbound:<key> (the key from before idempotency keys were scoped by
--         property, honoured when its message is this property's, docs/upgrading.md; KEYS[4]
--         again when none)
-- ARGV[1] the element as taken   ARGV[2] the message as Bellhop sends it ('{"id":…,"priority":N,…}')
-- ARGV[3] id   ARGV[4] priority   ARGV[5] idempotency key ('' = none)   ARGV[6] its TTL (s)
-- ARGV[7] message TTL (s)   ARGV[8] property_id   ARGV[9] channel
-- ARGV[10] conversation id (of KEYS[10]: the one named, or the one Bellhop derives)
-- ARGV[11] created_at   ARGV[12] to   ARGV[13] due (epoch ms) when delayed (delay_ms), else 0
-- ARGV[14] digest of ARGV[2]   ARGV[15] now (RFC 3339)
-- ARGV[16] prefix of message keys ('message:' with the key prefix)
-- The conversation's state (docs/properties.md, "Conversation state"):
-- KEYS[10] conversation:<cid> (the message's conversation_id when it is one of Bellhop's, else
--          the one Bellhop derives from property, channel and to)
-- KEYS[11] property:<pid>:unread   KEYS[12] property:<pid>:seq   KEYS[13] property:<pid>:events
-- KEYS[14] property:<pid>:escalation
-- ARGV[17] source ('ai' or 'staff')   ARGV[18] pub/sub channel of the property's events
-- ARGV[19] history length cap
-- ARGV[20] the message as its conversation shows it (JSON, direction "outbound", the effective
--          conversation_id): the data of its message.created event, and of the message.status
--          event when held (with status and reason put first)
-- ARGV[21] '1' when the element carries a handoff   ARGV[22] its reason   ARGV[23] its
-- confidence ('' none)   ARGV[24] now (epoch ms)
-- ARGV[25] '1' when the element is a handoff only (nothing to send)
-- KEYS[15] property:<pid>:conversation_index   KEYS[16] conversation:<cid>:messages
-- ARGV[26] conversation TTL (s)   ARGV[27] recent messages kept
-- A message filed for an existing conversation of its property joins it, as guest messages
-- and dashboards' replies do: its recent messages, its activity, a message.created event. A
-- dashboard's reply joined it when queued (staff_reply.lua: its record has sent_by), and a
-- message that joined once (the record's `listed`) does not again when it comes back.
-- An 'ai' message for a conversation whose mode is human is held: status held with reason
-- conversation_with_staff, a message.status event, never sent. A handoff is applied after the
-- message is filed (or held), so an engine's "a colleague will answer you" still goes out.
-- Returns {1, id} when filed, {3, id} when held, {2, seq or 0} for a handoff only (0: no such
-- conversation), {0, first_id} when the idempotency key was used by another
-- message (this one is dropped), {-1} when the element had left the processing list (another
-- process recovered it: that one files it), {-2, 'id_taken'} when the element's id belongs to
-- another message (a record of another property, an inbound message, or another outbound
-- message): it is dead-lettered, and that record stays as it was.
--#include legacy_key.lua
--#include event.lua
--#include conversation_state.lua
--#include conversation.lua
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return {-1}
end

-- The engine's handoff, with its event published: the seq, or 0 when the conversation is
-- unknown (or another property's) or its event could not be written.
local function apply_handoff()
  local seq, event = change_conversation(
      {record = KEYS[10], unread = KEYS[11], seq = KEYS[12], events = KEYS[13],
       escalation = KEYS[14]},
      {cid = ARGV[10], property_id = ARGV[8], change = 'handoff', by = 'engine',
       reason = ARGV[22], confidence = ARGV[23], assignee = '', now_ms = ARGV[24],
       ts = ARGV[15], history_max = ARGV[19]})
  if not seq then
    return 0
  end
  redis.call('PUBLISH', ARGV[18], event)
  return seq
end
-- The element has left the processing list: an error now (a record of another type) must not
-- fail the script, or the element would be lost. Such a handoff is dropped (0).
local function handoff()
  local ok, seq = pcall(apply_handoff)
  return ok and seq or 0
end
if ARGV[25] == '1' then
  return {2, handoff()}
end
-- A record that exists was written for this very message (POST /v1/messages/outbound, a staff
-- reply, or this script before a crash or a dead letter's retry): same property, outbound, the
-- same message (its digest; records from before digests were kept have none).
if redis.call('EXISTS', KEYS[4]) == 1 then
  local owner = redis.call('HMGET', KEYS[4], 'property_id', 'direction', 'digest',
                           'conversation_id')
  if owner[1] ~= ARGV[8] or owner[2] ~= 'outbound' or (owner[3] and owner[3] ~= ARGV[14]) then
    redis.call('LPUSH', KEYS[8], '{"reason":' ..
               cjson.encode('invalid: id ' .. ARGV[3] .. ' belongs to another message') ..
               ',"element":' .. cjson.encode(ARGV[1]) .. ',"failed_at":' ..
               cjson.encode(ARGV[15]) .. '}')
    redis.call('HINCRBY', KEYS[6], 'invalid', 1)
    return {-2, 'id_taken'}
  end
  -- Queued by a version that recorded only the conversation named (none): the record names
  -- the one derived, where the claim reads the guest's last message (docs/upgrading.md).
  if not owner[4] or owner[4] == '' then
    redis.call('HSET', KEYS[4], 'conversation_id', ARGV[10])
  end
end
if ARGV[5] ~= '' then
  -- The same message coming back (recovered after a crash) keeps its own key.
  local first = redis.call('SET', KEYS[5], ARGV[3], 'NX', 'GET', 'EX', ARGV[6])
  if not first then
    local legacy = legacy_first(KEYS[9], ARGV[16], ARGV[8])
    if legacy and legacy ~= ARGV[3] then
      redis.call('SET', KEYS[5], legacy, 'EX', ARGV[6])
      first = legacy
    end
  end
  if first and first ~= ARGV[3] then
    redis.call('HINCRBY', KEYS[6], 'duplicates', 1)
    return {0, first}
  end
end
local state = redis.pcall('HMGET', KEYS[10], 'property_id', 'mode', 'refreshed_at')
if ARGV[17] ~= 'staff' and type(state) == 'table' and not state.err and state[1] == ARGV[8] and
   state[2] == 'human' then
  -- Held: recorded and shown to staff as a suggestion, never sent.
  local seq, event = append_event(KEYS[12], KEYS[13], ARGV[19], ARGV[8], 'message.status',
                                  '{"status":"held","reason":"conversation_with_staff",' ..
                                  string.sub(ARGV[20], 2), ARGV[15])
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('HSET', KEYS[4], 'id', ARGV[3], 'direction', 'outbound', 'property_id', ARGV[8],
               'channel', ARGV[9], 'conversation_id', ARGV[10], 'created_at', ARGV[11],
               'to', ARGV[12], 'digest', ARGV[14])
  end
  redis.call('HSET', KEYS[4], 'status', 'held', 'reason', 'conversation_with_staff',
             'held_at', ARGV[15])
  redis.call('EXPIRE', KEYS[4], ARGV[7])
  -- The suggestion stays on the conversation (conversation:<cid>:held, the 10 newest, as long
  -- as the conversation) for an inbox opened later; the conversation's release drops them.
  local held = KEYS[10] .. ':held'
  redis.call('LPUSH', held, '{"status":"held","reason":"conversation_with_staff",' ..
             string.sub(ARGV[20], 2))
  redis.call('LTRIM', held, 0, 9)
  local ttl = redis.call('PTTL', KEYS[10])
  if ttl > 0 then
    redis.call('PEXPIRE', held, ttl)
  end
  redis.call('HINCRBY', KEYS[6], 'held', 1)
  if seq then
    redis.call('PUBLISH', ARGV[18], event)
  end
  if ARGV[21] == '1' then
    handoff()
  end
  return {3, ARGV[3]}
end
if tonumber(ARGV[13]) > 0 then
  redis.call('ZADD', KEYS[7], ARGV[13], ARGV[2])
else
  redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) * 1e12 + redis.call('INCR', KEYS[3]), ARGV[2])
end
if redis.call('EXISTS', KEYS[4]) == 0 then  -- a staff reply's record exists already
  redis.call('HSET', KEYS[4], 'id', ARGV[3], 'status', 'queued', 'direction', 'outbound',
             'property_id', ARGV[8], 'channel', ARGV[9], 'conversation_id', ARGV[10],
             'created_at', ARGV[11], 'to', ARGV[12], 'digest', ARGV[14])
  redis.call('EXPIRE', KEYS[4], ARGV[7])
end
redis.call('HINCRBY', KEYS[6], 'accepted', 1)
local listed = redis.call('HMGET', KEYS[4], 'sent_by', 'listed')
if type(state) == 'table' and not state.err and state[1] == ARGV[8] and not listed[1] and
   listed[2] ~= '1' then
  local seq, event = append_event(KEYS[12], KEYS[13], ARGV[19], ARGV[8], 'message.created',
                                  ARGV[20], ARGV[15])
  if seq then
    add_to_conversation(KEYS[15], KEYS[10], KEYS[16], ARGV[10], ARGV[24], ARGV[20], ARGV[26],
                        ARGV[27], state[3], {})
    redis.call('HSET', KEYS[4], 'listed', '1')
    redis.call('PUBLISH', ARGV[18], event)
  end
end
if ARGV[21] == '1' then
  handoff()
end
return {1, ARGV[3]}
