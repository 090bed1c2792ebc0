-- The atomic ingest of guest messages (POST /v1/messages/inbound and channel webhooks): one or
-- more messages per call, taken in order. Bellhop sends the messages that arrive while earlier
-- calls are in Redis together (group commit), so the fixed cost of a call is shared.
-- For each message either all of it happens or none: dedup, queue, status, event seq, history,
-- publish, and the conversation's index entry, recent messages and (when new, renamed or due
-- for renewal) record.
--
-- KEYS[1] inbound:messages, then 7 keys per message (message i from 0 at 1 + 7i):
--   +1 dedup:<channel>:<external_id>   +2 message:<id>
--   +3 property:<pid>:seq              +4 property:<pid>:events (stream)
--   +5 property:<pid>:conversation_index (zset)
--   +6 conversation:<cid> (hash)       +7 conversation:<cid>:messages (list)
-- ARGV[1] dedup TTL (s)   ARGV[2] message TTL (s)   ARGV[3] history length (approximate cap)
-- ARGV[4] conversation TTL (s)                     ARGV[5] recent messages kept per conversation
-- then 11 arguments per message (message i at 5 + 11i):
--   +1 id     +2 envelope JSON     +3 pub/sub channel     +4 event JSON after '{"seq":N,'
--   +5 property_id     +6 channel     +7 conversation_id     +8 received_at (RFC 3339)
--   +9 received_at (epoch ms)     +10 guest address (from)     +11 guest name ('' if none)
-- Returns one entry per message: {1, id, seq} when queued, {0, first_id} for a duplicate
-- external id, {-1, error} when Redis refused to store it (then nothing of it was written, so a
-- retry can queue it), {1, id, seq, error} when it was queued and recorded in the event history
-- but a later step (status record, conversation, publish) was refused: it must not be retried.
--#include append_event.lua
--#include conversation.lua
local KEYS_PER, ARGS_PER = 7, 11

local function refused(reply)
  return type(reply) == 'table' and reply.err
end

-- After the queue and the history: the status record, the conversation and the publish.
local function record_and_publish(k, a, id, event)
  redis.call('HSET', KEYS[k + 2], 'id', id, 'status', 'queued', 'direction', 'inbound',
             'property_id', ARGV[a + 5], 'channel', ARGV[a + 6], 'conversation_id', ARGV[a + 7],
             'received_at', ARGV[a + 8])
  redis.call('EXPIRE', KEYS[k + 2], ARGV[2])
  local record = redis.call('HMGET', KEYS[k + 6], 'refreshed_at', 'guest_name')
  local fields = {}
  if not record[1] then  -- a new record (or one written before refreshed_at existed)
    fields = {'conversation_id', ARGV[a + 7], 'property_id', ARGV[a + 5], 'channel', ARGV[a + 6],
              'guest', ARGV[a + 10]}
  end
  local name = ARGV[a + 11]
  if name ~= '' and record[2] ~= name then  -- a message without a name keeps the known one
    fields[#fields + 1] = 'guest_name'
    fields[#fields + 1] = name
  end
  add_to_conversation(KEYS[k + 5], KEYS[k + 6], KEYS[k + 7], ARGV[a + 7], ARGV[a + 9],
                      ARGV[a + 2], ARGV[4], ARGV[5], record[1], fields)
  redis.call('PUBLISH', ARGV[a + 3], event)
end

local function ingest_one(k, a)
  local id = ARGV[a + 1]
  -- The dedup key first, set only if absent (one command for the check and the write).
  local first = redis.pcall('SET', KEYS[k + 1], id, 'NX', 'GET', 'EX', ARGV[1])
  if refused(first) then
    return {-1, first.err}
  elseif first then
    return {0, first}
  end
  -- Each step undoes the ones before it when refused: a message is queued with its event in
  -- the history, or not at all (and then its dedup key is gone, so a retry can queue it).
  local pushed = redis.pcall('LPUSH', KEYS[1], ARGV[a + 2])
  if refused(pushed) then
    redis.call('DEL', KEYS[k + 1])
    return {-1, pushed.err}
  end
  local seq, event = append_event(KEYS[k + 3], KEYS[k + 4], ARGV[3], ARGV[a + 4])
  if not seq then
    redis.call('LPOP', KEYS[1])  -- the head is ours: nothing ran in between
    redis.call('DEL', KEYS[k + 1])
    return {-1, event}
  end
  local ok, err = pcall(record_and_publish, k, a, id, event)
  if not ok then
    return {1, id, seq, refused(err) or tostring(err)}
  end
  return {1, id, seq}
end

local results = {}
for i = 0, (#KEYS - 1) / KEYS_PER - 1 do
  results[i + 1] = ingest_one(1 + i * KEYS_PER, 5 + i * ARGS_PER)
end
return results
