-- The atomic ingest of guest messages (POST /v1/messages/inbound and channel webhooks): one or
-- more messages per call, taken in order. Bellhop sends the messages that arrive while earlier
-- calls are in Redis together (group commit), so the fixed cost of a call is shared.
-- A message of the inbound API carries its adapter key's rate limit (ratelimit.inbound_api),
-- decided here first, in order, with the algorithms of ratelimit/lua/check.lua (its fragments,
-- the same state) on Redis's TIME, read once per call: a refused message is not stored at all.
-- For each message either all of it happens or none: dedup, queue, status, event seq, history,
-- publish, the conversation's index entry, recent messages, last_inbound_at and unread count
-- (the record's and the property's), the start of the guest's wait when staff have the
-- conversation (escalation), and (when new, renamed or due for renewal) its record.
-- The envelope ends with "conversation_mode":"ai" (core/src/inbound_message.cpp writes it
-- last); for a conversation whose record says mode human the script writes "human" there, and
-- that envelope is the one queued, stored and published (docs/ai-engine.md).
--
-- KEYS[1] inbound:messages, KEYS[2 .. 1 + L] the rate-limit keys of the call
-- (ratelimit:<policy>:<subject>, L = ARGV[7], each once), then 10 keys per message (message i
-- from 0 at 1 + L + 10i):
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
-- ARGV[7] L, then 5 arguments per rate-limit key: algorithm, limit, window (ms), burst, and
--         its policy's key start (`ratelimit:<policy>:` with the key prefix)
-- then 12 arguments per message (message i at 7 + 5L + 12i):
--   +1 id     +2 envelope JSON ending with "conversation_mode":"ai" (with the mode written in,
--      also the data of its message.created event)
--   +3 pub/sub channel     +4 property_id     +5 channel     +6 conversation_id
--   +7 received_at (RFC 3339, also the event's ts)     +8 received_at (epoch ms)
--   +9 guest address (from)     +10 guest name ('' if none)
--   +11 the account the guest wrote to ('' if none): the conversation's `account`, which
--       replies go out from (docs/outbound.md)
--   +12 its rate-limit key (1 .. L: KEYS[1 + that]), costing 1; 0 when it is not limited
-- Returns one entry per message, {code, text, seq, error[, remaining, retry_after, reset]}:
--   {1, id, seq, ''} queued; {1, id, seq, error} queued and recorded in the event history, but
--   a later step (status record, conversation, publish) was refused: it must not be retried;
--   {0, first_id} a duplicate external id; {-1, error} Redis refused to store it (then nothing
--   of it was written, so a retry can queue it); {-2} refused by its rate limit (nothing
--   written); {-3, error} its rate limit could not be decided (nothing written or consumed).
--   A limited message's entry (but for -3) ends with its verdict as check.lua gives it:
--   remaining, retry_after (ms; -1: never), reset (ms).
--
-- The steps go message by message except the queue: one LPUSH takes every new message of the
-- call, in order (LPUSH a b c leaves c at the head, so a consumer taking from the tail gets a
-- first). Nothing runs in between, so a message whose later step is refused is taken back out
-- of the head end with LREM, by the envelope as queued (its mode written in).
-- Done once per call rather than per message: the legacy dedup keys (one MGET) and each
-- conversation's record (one HMGET, then kept up to date here as the call writes it).
--#include event.lua
--#include conversation.lua
--#include legacy_key.lua
-- The rate-limit algorithms (ratelimit/lua/fragments, as check.lua includes them).
local expiry_slack = 0
--#include state_hashes.lua
--#include fixed_window.lua
--#include sliding_window.lua
--#include gcra.lua
local ALGORITHMS = {fixed_window = fixed_window, sliding_window = sliding_window, gcra = gcra}
local KEYS_PER, ARGS_PER = 10, 12
local LIMITS = tonumber(ARGV[7])
local KEYS_FIRST, ARGS_FIRST = 1 + LIMITS, 7 + 5 * LIMITS
local PUSH_CHUNK = 256  -- values per LPUSH or MGET (unpack has a limit)

local function refused(reply)
  return type(reply) == 'table' and reply.err
end

-- Each conversation's record as this call knows it: read once (the first of its messages),
-- then updated with what the call writes to it. {mode, escalated_at, refreshed_at, guest_name,
-- account, unread}, or {err = …} when it could not be read (a key of another type).
local records = {}
local function record_of(key)
  local record = records[key]
  if not record then
    record = redis.pcall('HMGET', key, 'mode', 'escalated_at', 'refreshed_at', 'guest_name',
                         'account', 'unread')
    records[key] = record
  end
  return record
end

-- After the queue and the history: the status record, the conversation and the publish.
local function record_and_publish(k, a, id, event, envelope, waits)
  redis.call('HSET', KEYS[k + 2], 'id', id, 'status', 'queued', 'direction', 'inbound',
             'property_id', ARGV[a + 4], 'channel', ARGV[a + 5], 'conversation_id', ARGV[a + 6],
             'received_at', ARGV[a + 7])
  redis.call('EXPIRE', KEYS[k + 2], ARGV[2])
  local record = record_of(KEYS[k + 6])
  if refused(record) then
    error(record)
  end
  local fields = {}
  if not record[3] then  -- a new record (or one written before refreshed_at existed)
    fields = {'conversation_id', ARGV[a + 6], 'property_id', ARGV[a + 4], 'channel', ARGV[a + 5],
              'guest', ARGV[a + 9]}
  end
  local name = ARGV[a + 10]
  if name ~= '' and record[4] ~= name then  -- a message without a name keeps the known one
    fields[#fields + 1] = 'guest_name'
    fields[#fields + 1] = name
  end
  -- Written with the other fields in one HSET (the record was just read: no HINCRBY needed).
  local unread = string.format('%d', (tonumber(record[6]) or 0) + 1)
  fields[#fields + 1] = 'last_inbound_at'
  fields[#fields + 1] = ARGV[a + 8]
  fields[#fields + 1] = 'unread'
  fields[#fields + 1] = unread
  local account = ARGV[a + 11]
  if account ~= '' and record[5] ~= account then  -- the account the guest last wrote to
    fields[#fields + 1] = 'account'
    fields[#fields + 1] = account
  end
  if add_to_conversation(KEYS[k + 5], KEYS[k + 6], KEYS[k + 7], ARGV[a + 6], ARGV[a + 8],
                         envelope, ARGV[4], ARGV[5], record[3], fields) then
    record[3] = ARGV[a + 8]
  end
  if name ~= '' then
    record[4] = name
  end
  if account ~= '' then
    record[5] = account
  end
  record[6] = unread
  redis.call('HINCRBY', KEYS[k + 9], ARGV[a + 6], 1)
  if waits then  -- the first unread, unanswered message starts the wait (NX)
    redis.call('ZADD', KEYS[k + 10], 'NX', ARGV[a + 8], ARGV[a + 6])
  end
  redis.call('PUBLISH', ARGV[a + 3], event)
end

local count = (#KEYS - KEYS_FIRST) / KEYS_PER
local results = {}
local function answer(i, code, text, seq, err)
  local r = results[i + 1]
  if not r then
    r = {0, '', 0, ''}
    results[i + 1] = r
  end
  r[1], r[2], r[3], r[4] = code, text or '', seq or 0, err or ''
end

-- 0. The rate limits, message by message: each takes its unit before the next is decided, so
-- messages of one key consume in order. A refused or undecided message goes no further.
local limited = {}  -- i -> true when refused or undecided
if LIMITS > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 0, count - 1 do
    local j = tonumber(ARGV[ARGS_FIRST + i * ARGS_PER + 12])
    if j > 0 then
      local p = 8 + 5 * (j - 1)
      local algorithm = ALGORITHMS[ARGV[p]]
      local ok, allowed, remaining, retry, reset, consume, c1, c2, c3 =
          false, 'unknown rate-limit algorithm'
      if algorithm then
        ok, allowed, remaining, retry, reset, consume, c1, c2, c3 =
            pcall(algorithm, KEYS[1 + j], tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]),
                  tonumber(ARGV[p + 3]), 1, now, ARGV[p + 4])
      end
      local err = not ok and allowed
      if ok and allowed then
        ok, err = pcall(consume, c1, c2, c3)
      end
      if not ok then
        answer(i, -3, refused(err) or tostring(err))
        limited[i] = true
      else
        answer(i, allowed and 0 or -2)
        local r = results[i + 1]
        r[5] = math.max(0, math.floor(remaining))
        r[6] = retry < 0 and -1 or math.ceil(retry)
        r[7] = math.max(0, math.ceil(reset))
        limited[i] = not allowed or nil
      end
    end
  end
  hashes_flush(now)  -- what the fixed windows and gcra consumed, written once
end

-- 1. The dedup keys, set only if absent (one command for the check and the write). A second
-- copy within this call shares the first one's fate, decided at the end.
local fresh = {}
local set_here, copies = {}, {}  -- dedup key -> message of this call that set it; i -> that one
for i = 0, count - 1 do
  if not limited[i] then
    local k, a = KEYS_FIRST + i * KEYS_PER, ARGS_FIRST + i * ARGS_PER
    local first = redis.pcall('SET', KEYS[k + 1], ARGV[a + 1], 'NX', 'GET', 'EX', ARGV[1])
    if refused(first) then
      answer(i, -1, first.err)
    elseif first and set_here[KEYS[k + 1]] then
      copies[i] = set_here[KEYS[k + 1]]
    elseif first then
      answer(i, 0, first)
    else
      set_here[KEYS[k + 1]] = i
      fresh[#fresh + 1] = i
    end
  end
end

-- Taken in before the upgrade, under the unscoped key, by this property: a new message is a
-- duplicate after all, and the scoped key answers the next one. The unscoped keys of all the new
-- messages in one MGET.
if #fresh > 0 then
  local still = {}
  for first = 1, #fresh, PUSH_CHUNK do
    local last = math.min(first + PUSH_CHUNK - 1, #fresh)
    local chunk = {}
    for j = first, last do
      chunk[#chunk + 1] = KEYS[KEYS_FIRST + fresh[j] * KEYS_PER + 8]
    end
    local values = redis.pcall('MGET', unpack(chunk))
    for j = first, last do
      local i = fresh[j]
      local k, a = KEYS_FIRST + i * KEYS_PER, ARGS_FIRST + i * ARGS_PER
      local legacy = not refused(values) and legacy_owned(values[j - first + 1], ARGV[6], ARGV[a + 4])
      if legacy then
        redis.call('SET', KEYS[k + 1], legacy, 'EX', ARGV[1])
        answer(i, 0, legacy)
      else
        still[#still + 1] = i
      end
    end
  end
  fresh = still
end

-- A copy is a duplicate of a stored message (or of the one its first turned out to repeat),
-- or refused with it (and retried with it).
local function settle_copies()
  for i, j in pairs(copies) do
    local r = results[j + 1]
    if r[1] >= 0 then
      answer(i, 0, r[2])
    else
      answer(i, -1, r[2])
    end
  end
  return results
end

-- The envelopes of the new messages, each with its conversation's mode (read with the rest of
-- its record, once per conversation). Built before the queue, as the queue holds them.
-- A message of a conversation with staff that was not escalated yet starts the guest's wait.
-- A record Bellhop did not write (another type) reads as mode ai, and its message is still
-- queued (the dedup key is set already; a failed call would lose it).
local envelopes, waits = {}, {}
local MODE_AI = ',"conversation_mode":"ai"}'
local MODE_HUMAN = ',"conversation_mode":"human"}'
for _, i in ipairs(fresh) do
  local text = ARGV[ARGS_FIRST + i * ARGS_PER + 2]
  local state = record_of(KEYS[KEYS_FIRST + i * KEYS_PER + 6])
  if not refused(state) and state[1] == 'human' then
    waits[i] = not state[2]
    if string.sub(text, -#MODE_AI) == MODE_AI then
      text = string.sub(text, 1, -#MODE_AI - 1) .. MODE_HUMAN
    end
  end
  envelopes[i] = text
end
-- A new message that can't be stored: its dedup key goes, so a retry can queue it.
local function give_up(i, err)
  redis.call('DEL', KEYS[KEYS_FIRST + i * KEYS_PER + 1])
  answer(i, -1, err)
end

-- 2. The queue: every new message in one LPUSH (in chunks), in order.
for first = 1, #fresh, PUSH_CHUNK do
  local last = math.min(first + PUSH_CHUNK - 1, #fresh)
  local chunk = {}
  for j = first, last do
    chunk[#chunk + 1] = envelopes[fresh[j]]
  end
  local pushed = redis.pcall('LPUSH', KEYS[1], unpack(chunk))
  if refused(pushed) then
    for j = 1, #fresh do
      if j < first then
        redis.call('LREM', KEYS[1], 1, envelopes[fresh[j]])
      end
      give_up(fresh[j], pushed.err)
    end
    return settle_copies()
  end
end

-- 3. Per message: the event (seq and history), then the record, conversation and publish.
for _, i in ipairs(fresh) do
  local k, a = KEYS_FIRST + i * KEYS_PER, ARGS_FIRST + i * ARGS_PER
  local id = ARGV[a + 1]
  local seq, event = append_event(KEYS[k + 3], KEYS[k + 4], ARGV[3], ARGV[a + 4],
                                  'message.created', envelopes[i], ARGV[a + 7])
  if not seq then
    redis.call('LREM', KEYS[1], 1, envelopes[i])  -- near the head: pushed by this call
    give_up(i, event)
  else
    local ok, err = pcall(record_and_publish, k, a, id, event, envelopes[i], waits[i])
    if ok then
      answer(i, 1, id, seq)
    else
      -- What this call knows of the record may be behind what reached Redis: read it again.
      records[KEYS[k + 6]] = nil
      answer(i, 1, id, seq, refused(err) or tostring(err))
    end
  end
end
return settle_copies()
