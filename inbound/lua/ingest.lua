-- The atomic ingest of guest messages (POST /v1/messages/inbound and channel webhooks): one or
-- more messages per call, taken in order. Bellhop sends the messages that arrive while earlier
-- calls are in Redis together (group commit), so the fixed cost of a call is shared.
-- For each message either all of it happens or none: dedup, queue, status, event seq, history,
-- publish, the conversation's index entry, recent messages, last_inbound_at and unread count
-- (the record's and the property's), the start of the guest's wait when staff have the
-- conversation (escalation), and (when new, renamed or due for renewal) its record.
-- The envelope ends with "conversation_mode":"ai" (core/src/inbound_message.cpp writes it
-- last); for a conversation whose record says mode human the script writes "human" there, and
-- that envelope is the one queued, stored and published (docs/ai-engine.md).
--
-- KEYS[1] inbound:messages, then 10 keys per message (message i from 0 at 1 + 10i):
--   +1 dedup:<pid>:<channel>:<external_id>   +2 message:<id>
--   +3 property:<pid>:seq              +4 property:<pid>:events (stream)
--   +5 property:<pid>:conversation_index (zset)
--   +6 conversation:<cid> (hash)       +7 conversation:<cid>:messages (list)
--   +8 dedup:<channel>:<external_id> (the key from before dedup was scoped by property: honoured
--      when its first message is this property's, docs/upgrading.md)
--   +9 property:<pid>:unread (hash cid -> guest messages since staff last read)
--   +10 property:<pid>:escalation (zset cid -> when its guest began to wait for staff)
-- ARGV[1] dedup TTL (s)   ARGV[2] message TTL (s)   ARGV[3] history length (approximate cap)
-- ARGV[4] conversation TTL (s)                     ARGV[5] recent messages kept per conversation
-- ARGV[6] prefix of message keys ('message:' with the key prefix)
-- then 11 arguments per message (message i at 6 + 11i):
--   +1 id     +2 envelope JSON ending with "conversation_mode":"ai" (with the mode written in,
--      also the data of its message.created event)
--   +3 pub/sub channel     +4 property_id     +5 channel     +6 conversation_id
--   +7 received_at (RFC 3339, also the event's ts)     +8 received_at (epoch ms)
--   +9 guest address (from)     +10 guest name ('' if none)
--   +11 the account the guest wrote to ('' if none): the conversation's `account`, which
--       replies go out from (docs/outbound.md)
-- Returns one entry per message: {1, id, seq} when queued, {0, first_id} for a duplicate
-- external id, {-1, error} when Redis refused to store it (then nothing of it was written, so a
-- retry can queue it), {1, id, seq, error} when it was queued and recorded in the event history
-- but a later step (status record, conversation, publish) was refused: it must not be retried.
--
-- The steps go message by message except the queue: one LPUSH takes every new message of the
-- call, in order (LPUSH a b c leaves c at the head, so a consumer taking from the tail gets a
-- first). Nothing runs in between, so a message whose later step is refused is taken back out
-- of the head end with LREM, by the envelope as queued (its mode written in).
--#include event.lua
--#include conversation.lua
--#include legacy_key.lua
local KEYS_PER, ARGS_PER, ARGS_FIRST = 10, 11, 6
local PUSH_CHUNK = 256  -- envelopes per LPUSH (unpack has a limit)

local function refused(reply)
  return type(reply) == 'table' and reply.err
end

-- After the queue and the history: the status record, the conversation and the publish.
local function record_and_publish(k, a, id, event, envelope, waits)
  redis.call('HSET', KEYS[k + 2], 'id', id, 'status', 'queued', 'direction', 'inbound',
             'property_id', ARGV[a + 4], 'channel', ARGV[a + 5], 'conversation_id', ARGV[a + 6],
             'received_at', ARGV[a + 7])
  redis.call('EXPIRE', KEYS[k + 2], ARGV[2])
  local record = redis.call('HMGET', KEYS[k + 6], 'refreshed_at', 'guest_name', 'account',
                            'unread')
  local fields = {}
  if not record[1] then  -- a new record (or one written before refreshed_at existed)
    fields = {'conversation_id', ARGV[a + 6], 'property_id', ARGV[a + 4], 'channel', ARGV[a + 5],
              'guest', ARGV[a + 9]}
  end
  local name = ARGV[a + 10]
  if name ~= '' and record[2] ~= name then  -- a message without a name keeps the known one
    fields[#fields + 1] = 'guest_name'
    fields[#fields + 1] = name
  end
  -- Written with the other fields in one HSET (the record was just read: no HINCRBY needed).
  fields[#fields + 1] = 'last_inbound_at'
  fields[#fields + 1] = ARGV[a + 8]
  fields[#fields + 1] = 'unread'
  fields[#fields + 1] = string.format('%d', (tonumber(record[4]) or 0) + 1)
  local account = ARGV[a + 11]
  if account ~= '' and record[3] ~= account then  -- the account the guest last wrote to
    fields[#fields + 1] = 'account'
    fields[#fields + 1] = account
  end
  add_to_conversation(KEYS[k + 5], KEYS[k + 6], KEYS[k + 7], ARGV[a + 6], ARGV[a + 8],
                      envelope, ARGV[4], ARGV[5], record[1], fields)
  redis.call('HINCRBY', KEYS[k + 9], ARGV[a + 6], 1)
  if waits then  -- the first unread, unanswered message starts the wait (NX)
    redis.call('ZADD', KEYS[k + 10], 'NX', ARGV[a + 8], ARGV[a + 6])
  end
  redis.call('PUBLISH', ARGV[a + 3], event)
end

local results, fresh = {}, {}
local count = (#KEYS - 1) / KEYS_PER
local set_here, copies = {}, {}  -- dedup key -> message of this call that set it; i -> that one

-- 1. The dedup keys, set only if absent (one command for the check and the write). A second
-- copy within this call shares the first one's fate, decided at the end.
for i = 0, count - 1 do
  local k, a = 1 + i * KEYS_PER, ARGS_FIRST + i * ARGS_PER
  local first = redis.pcall('SET', KEYS[k + 1], ARGV[a + 1], 'NX', 'GET', 'EX', ARGV[1])
  if not first then
    -- Taken in before the upgrade, under the unscoped key, by this property: the retry is a
    -- duplicate, and the scoped key answers the next one.
    local legacy = legacy_first(KEYS[k + 8], ARGV[6], ARGV[a + 4])
    if legacy then
      redis.call('SET', KEYS[k + 1], legacy, 'EX', ARGV[1])
      first = legacy
    end
  end
  if refused(first) then
    results[i + 1] = {-1, first.err}
  elseif first and set_here[KEYS[k + 1]] then
    copies[i] = set_here[KEYS[k + 1]]
  elseif first then
    results[i + 1] = {0, first}
  else
    set_here[KEYS[k + 1]] = i
    fresh[#fresh + 1] = i
  end
end

-- A copy is a duplicate of a stored message, or refused with it (and retried with it).
local function settle_copies()
  for i, j in pairs(copies) do
    local r = results[j + 1]
    results[i + 1] = r[1] == 1 and {0, r[2]} or {-1, r[2]}
  end
  return results
end

-- The envelopes of the new messages, each with its conversation's mode (one HGET per message,
-- in this call: no round trip). Built before the queue, as the queue holds them.
-- A message of a conversation with staff that was not escalated yet starts the guest's wait.
local envelopes, waits = {}, {}
local MODE_AI = ',"conversation_mode":"ai"}'
local MODE_HUMAN = ',"conversation_mode":"human"}'
for _, i in ipairs(fresh) do
  local text = ARGV[ARGS_FIRST + i * ARGS_PER + 2]
  -- pcall: a record Bellhop did not write (another type) reads as mode ai, and its message is
  -- still queued (the dedup key is set already; a failed call would lose it).
  local state = redis.pcall('HMGET', KEYS[1 + i * KEYS_PER + 6], 'mode', 'escalated_at')
  if not refused(state) and state[1] == 'human' then
    waits[i] = not state[2]
    if string.sub(text, -#MODE_AI) == MODE_AI then
      text = string.sub(text, 1, -#MODE_AI - 1) .. MODE_HUMAN
    end
  end
  envelopes[i] = text
end
local function envelope(i)
  return envelopes[i]
end
-- A new message that can't be stored: its dedup key goes, so a retry can queue it.
local function give_up(i, err)
  redis.call('DEL', KEYS[1 + i * KEYS_PER + 1])
  results[i + 1] = {-1, err}
end

-- 2. The queue: every new message in one LPUSH (in chunks), in order.
for first = 1, #fresh, PUSH_CHUNK do
  local last = math.min(first + PUSH_CHUNK - 1, #fresh)
  local chunk = {}
  for j = first, last do
    chunk[#chunk + 1] = envelope(fresh[j])
  end
  local pushed = redis.pcall('LPUSH', KEYS[1], unpack(chunk))
  if refused(pushed) then
    for j = 1, #fresh do
      if j < first then
        redis.call('LREM', KEYS[1], 1, envelope(fresh[j]))
      end
      give_up(fresh[j], pushed.err)
    end
    return settle_copies()
  end
end

-- 3. Per message: the event (seq and history), then the record, conversation and publish.
for _, i in ipairs(fresh) do
  local k, a = 1 + i * KEYS_PER, ARGS_FIRST + i * ARGS_PER
  local id = ARGV[a + 1]
  local seq, event = append_event(KEYS[k + 3], KEYS[k + 4], ARGV[3], ARGV[a + 4],
                                  'message.created', envelope(i), ARGV[a + 7])
  if not seq then
    redis.call('LREM', KEYS[1], 1, envelope(i))  -- near the head: pushed by this call
    give_up(i, event)
  else
    local ok, err = pcall(record_and_publish, k, a, id, event, envelope(i), waits[i])
    if ok then
      results[i + 1] = {1, id, seq}
    else
      results[i + 1] = {1, id, seq, refused(err) or tostring(err)}
    end
  end
end
return settle_copies()
