-- Files a batch of elements that the intake took from outbound:<channel> into this process's
-- intake (outbound_take.lua: its hash, or one of its lists), in the order given (the intake's:
-- priority, then arrival): each as ready to send, ordered by priority (lower first) then
-- arrival, or delayed, held, a handoff only, a duplicate, or a dead letter. Each element is
-- taken off the intake (out of the hash, or its bit set in its list's bitmap) in the same step
-- as it is filed, so a batch cut short by a crash leaves exactly the elements not yet filed
-- for the recovery; an intake list all filed is deleted.
-- Shared:
-- KEYS[1] intake hash (its lists, derived: <KEYS[1]>:<number>)   KEYS[2] ready (zset)
-- KEYS[3] arrivals counter   KEYS[4] stats (hash)   KEYS[5] delayed (zset)   KEYS[6] dead list
-- ARGV[1] idempotency TTL (s)   ARGV[2] message TTL (s)
-- ARGV[3] prefix of message keys ('message:' with the key prefix)   ARGV[4] history length cap
-- ARGV[5] conversation TTL (s)   ARGV[6] recent messages kept   ARGV[7] channel
-- ARGV[8] now (RFC 3339)   ARGV[9] now (epoch ms)
-- Then one group per element, from ARGV[10] on, each starting with its kind:
-- 'dead', seq, the element as taken, the dead letter JSON: not a message Bellhop can send (not
--   JSON, a field missing or wrong, another property's): onto the dead list, counted invalid.
-- 'file', seq, the element as taken, the message as Bellhop sends it ('{"id":…,"priority":N,…}'),
--   id, priority, idempotency key ('' = none), property_id, conversation id (the one named, or
--   the one Bellhop derives), created_at, to, due (epoch ms) when delayed (delay_ms) else 0,
--   digest of the message, source ('ai' or 'staff'), pub/sub channel of the property's events,
--   the message as its conversation shows it (JSON, direction "outbound", the effective
--   conversation_id: the data of its message.created event, and of the message.status event
--   when held, with status and reason put first), '1' when the element carries a handoff, its
--   reason, its confidence ('' none), '1' when the element is a handoff only (nothing to send);
--   with ten keys of its own, the next ten of KEYS from KEYS[7] on: message:<id>,
--   idempotency:outbound:<pid>:<key> (message:<id> again when none), idempotency:outbound:<key>
--   (the key from before idempotency keys were scoped by property, honoured when its message is
--   this property's, docs/upgrading.md; message:<id> again when none), conversation:<cid>,
--   property:<pid>:unread, property:<pid>:seq, property:<pid>:events, property:<pid>:escalation,
--   property:<pid>:conversation_index, conversation:<cid>:messages.
-- A message filed for an existing conversation of its property joins it, as guest messages
-- and dashboards' replies do: its recent messages, its activity, a message.created event. A
-- dashboard's reply joined it when queued (staff_reply.lua: its record has sent_by), and a
-- message that joined once (the record's `listed`) does not again when it comes back.
-- An 'ai' message for a conversation whose mode is human is held: status held with reason
-- conversation_with_staff, a message.status event, never sent. A handoff is applied after the
-- message is filed (or held), so an engine's "a colleague will answer you" still goes out.
-- Returns two values per element, in order: {1, id} when filed, {3, id} when held, {2, seq or
-- 0} for a handoff only (0: no such conversation), {0, first_id} when the idempotency key was
-- used by another message (this one is dropped), {-1, ''} when the element had left the intake
-- set (another process recovered it: that one files it), {-2, 'id_taken'} when the element's
-- id belongs to another message (a record of another property, an inbound message, or another
-- outbound message): it is dead-lettered, and that record stays as it was; {-3, ''} for a
-- 'dead' element, {-4, error} when filing failed in Redis (the element is dead-lettered with
-- that error as its reason rather than lost: it has left the intake hash).
--#include legacy_key.lua
--#include event.lua
--#include conversation_state.lua
--#include conversation.lua

-- The counters of the stats hash this call adds to, written once at its end.
local counts = {accepted = 0, duplicates = 0, held = 0, invalid = 0}
-- The last arrival number given (outbound:<channel>:arrivals, taken for the whole call below).
local arrival = 0

local function dead_letter(reason, raw)
  redis.call('LPUSH', KEYS[6], '{"reason":' .. cjson.encode(reason) .. ',"element":' ..
             cjson.encode(raw) .. ',"failed_at":' .. cjson.encode(ARGV[8]) .. '}')
  counts.invalid = counts.invalid + 1
end

-- One element: K its ten keys, A its values (A.raw, A.json, …).
local function accept(K, A)
  -- The engine's handoff, with its event published: the seq, or 0 when the conversation is
  -- unknown (or another property's) or its event could not be written.
  local function apply_handoff()
    local seq, event = change_conversation(
        {record = K.conversation, unread = K.unread, seq = K.seq, events = K.events,
         escalation = K.escalation},
        {cid = A.conversation, property_id = A.pid, change = 'handoff', by = 'engine',
         reason = A.handoff_reason, confidence = A.handoff_confidence, assignee = '',
         now_ms = ARGV[9], ts = ARGV[8], history_max = ARGV[4]})
    if not seq then
      return 0
    end
    redis.call('PUBLISH', A.events_channel, event)
    return seq
  end
  -- The element has left the intake hash: an error now (a record of another type) must not
  -- fail the element, or it would be lost. Such a handoff is dropped (0).
  local function handoff()
    local ok, seq = pcall(apply_handoff)
    return ok and seq or 0
  end
  if A.handoff_only == '1' then
    return 2, handoff()
  end
  -- A record that exists was written for this very message (POST /v1/messages/outbound, a
  -- staff reply, or this script before a crash or a dead letter's retry): same property,
  -- outbound, the same message (its digest; records from before digests were kept have none).
  local exists = redis.call('EXISTS', K.message) == 1
  if exists then
    local owner = redis.call('HMGET', K.message, 'property_id', 'direction', 'digest',
                             'conversation_id')
    if owner[1] ~= A.pid or owner[2] ~= 'outbound' or (owner[3] and owner[3] ~= A.digest) then
      dead_letter('invalid: id ' .. A.id .. ' belongs to another message', A.raw)
      return -2, 'id_taken'
    end
    -- Queued by a version that recorded only the conversation named (none): the record names
    -- the one derived, where the claim reads the guest's last message (docs/upgrading.md).
    if not owner[4] or owner[4] == '' then
      redis.call('HSET', K.message, 'conversation_id', A.conversation)
    end
  end
  if A.idempotency_key ~= '' then
    -- The same message coming back (recovered after a crash) keeps its own key.
    local first = redis.call('SET', K.idempotency, A.id, 'NX', 'GET', 'EX', ARGV[1])
    if not first then
      local legacy = legacy_first(K.legacy_idempotency, ARGV[3], A.pid)
      if legacy and legacy ~= A.id then
        redis.call('SET', K.idempotency, legacy, 'EX', ARGV[1])
        first = legacy
      end
    end
    if first and first ~= A.id then
      counts.duplicates = counts.duplicates + 1
      return 0, first
    end
  end
  local state = redis.pcall('HMGET', K.conversation, 'property_id', 'mode', 'refreshed_at')
  if A.source ~= 'staff' and type(state) == 'table' and not state.err and state[1] == A.pid and
     state[2] == 'human' then
    -- Held: recorded and shown to staff as a suggestion, never sent.
    local suggestion = '{"status":"held","reason":"conversation_with_staff",' ..
                       string.sub(A.entry, 2)
    local seq, event = append_event(K.seq, K.events, ARGV[4], A.pid, 'message.status',
                                    suggestion, ARGV[8])
    if not exists then
      redis.call('HSET', K.message, 'id', A.id, 'direction', 'outbound', 'property_id', A.pid,
                 'channel', ARGV[7], 'conversation_id', A.conversation, 'created_at',
                 A.created_at, 'to', A.to, 'digest', A.digest)
    end
    redis.call('HSET', K.message, 'status', 'held', 'reason', 'conversation_with_staff',
               'held_at', ARGV[8])
    redis.call('EXPIRE', K.message, ARGV[2])
    -- The suggestion stays on the conversation (conversation:<cid>:held, the 10 newest, as
    -- long as the conversation) for an inbox opened later; the conversation's release drops
    -- them.
    local held = K.conversation .. ':held'
    redis.call('LPUSH', held, suggestion)
    redis.call('LTRIM', held, 0, 9)
    local ttl = redis.call('PTTL', K.conversation)
    if ttl > 0 then
      redis.call('PEXPIRE', held, ttl)
    end
    counts.held = counts.held + 1
    if seq then
      redis.call('PUBLISH', A.events_channel, event)
    end
    if A.handoff == '1' then
      handoff()
    end
    return 3, A.id
  end
  if tonumber(A.due) > 0 then
    redis.call('ZADD', KEYS[5], A.due, A.json)
  else
    arrival = arrival + 1
    redis.call('ZADD', KEYS[2], tonumber(A.priority) * 1e12 + arrival, A.json)
  end
  -- `exists` still holds: nothing above writes the record.
  local listed = {false, false}  -- a record written now has neither
  if not exists then  -- a staff reply's record exists already
    redis.call('HSET', K.message, 'id', A.id, 'status', 'queued', 'direction', 'outbound',
               'property_id', A.pid, 'channel', ARGV[7], 'conversation_id', A.conversation,
               'created_at', A.created_at, 'to', A.to, 'digest', A.digest)
    redis.call('EXPIRE', K.message, ARGV[2])
  else
    listed = redis.call('HMGET', K.message, 'sent_by', 'listed')
  end
  counts.accepted = counts.accepted + 1
  -- Joining the conversation under pcall: the message is filed (in ready or delayed) by now, so
  -- an error here (a conversation key of another type, say) must not dead-letter it as well.
  local function join()
    local seq, event = append_event(K.seq, K.events, ARGV[4], A.pid, 'message.created', A.entry,
                                    ARGV[8])
    if seq then
      add_to_conversation(K.conversation_index, K.conversation, K.messages, A.conversation,
                          ARGV[9], A.entry, ARGV[5], ARGV[6], state[3], {})
      redis.call('HSET', K.message, 'listed', '1')
      redis.call('PUBLISH', A.events_channel, event)
    end
  end
  if type(state) == 'table' and not state.err and state[1] == A.pid and not listed[1] and
     listed[2] ~= '1' then
    pcall(join)
  end
  if A.handoff == '1' then
    handoff()
  end
  return 1, A.id
end

local file_fields = {'seq', 'raw', 'json', 'id', 'priority', 'idempotency_key', 'pid',
                     'conversation', 'created_at', 'to', 'due', 'digest', 'source',
                     'events_channel', 'entry', 'handoff', 'handoff_reason',
                     'handoff_confidence', 'handoff_only'}
local key_fields = {'message', 'idempotency', 'legacy_idempotency', 'conversation', 'unread',
                    'seq', 'events', 'escalation', 'conversation_index', 'messages'}
-- Off the intake hash first, all at once, in the same step as their filing: one gone means
-- another process recovered it after this one was taken for dead, and files it itself.
local groups = {}  -- {kind, seq, ARGV index, KEYS index}
local a, k = 10, 7
while a <= #ARGV do
  groups[#groups + 1] = {ARGV[a], ARGV[a + 1], a, k}
  if ARGV[a] == 'dead' then
    a = a + 4
  else
    a = a + 1 + #file_fields
    k = k + #key_fields
  end
end
-- An element's seq is its number in the intake hash, or '<list>+<index>' for the index-th
-- element (from the tail, 0 the oldest) of the intake list numbered <list>
-- (outbound_take.lua): there, filed means its bit set in <intake list>:filed.
local hashed, listed, lists = {}, {}, {}
for i, g in ipairs(groups) do
  local list, index = string.match(g[2], '^(%d+)%+(%d+)$')
  if list then
    listed[i] = {KEYS[1] .. ':' .. list, tonumber(index), list}
    lists[list] = true
  else
    hashed[#hashed + 1] = i
  end
end
local present = {}
if #hashed > 0 then
  local seqs = {}
  for j, i in ipairs(hashed) do
    seqs[j] = groups[i][2]
  end
  local values = redis.call('HMGET', KEYS[1], unpack(seqs))
  for j, i in ipairs(hashed) do
    present[i] = values[j] ~= false
  end
end
-- A list element is present while its list is (<KEYS[1]>:lists: number -> length taken) and
-- its bit is not set (a process that took this one for dead handed it back: it set the bit).
local lengths = {}
for list in pairs(lists) do
  lengths[list] = tonumber(redis.call('HGET', KEYS[1] .. ':lists', list)) or 0
end
for i, at in pairs(listed) do
  present[i] = at[2] < lengths[at[3]] and redis.call('GETBIT', at[1] .. ':filed', at[2]) == 0
end
local taken_seqs, files = {}, 0
for i, g in ipairs(groups) do
  if present[i] then
    if listed[i] then
      redis.call('SETBIT', listed[i][1] .. ':filed', listed[i][2], 1)
    else
      taken_seqs[#taken_seqs + 1] = g[2]
    end
    files = files + (g[1] == 'dead' and 0 or 1)
  end
end
if #taken_seqs > 0 then
  redis.call('HDEL', KEYS[1], unpack(taken_seqs))
end
-- The arrival numbers of this call's messages, one each (the delayed, held and duplicate ones
-- leave theirs unused), in the order they are filed.
-- After the HDEL above nothing may end the call: an arrivals counter that is not a number
-- leaves this call's arrival numbers starting at 1 (their order within a priority still holds).
if files > 0 then
  local last = redis.pcall('INCRBY', KEYS[3], files)
  arrival = type(last) == 'number' and last - files or 0
end
local out = {}
for i, g in ipairs(groups) do
  local kind, a, k = g[1], g[3], g[4]
  if not present[i] then
    out[#out + 1], out[#out + 2] = -1, ''
  elseif kind == 'dead' then
    redis.pcall('LPUSH', KEYS[6], ARGV[a + 3])
    counts.invalid = counts.invalid + 1
    out[#out + 1], out[#out + 2] = -3, ''
  else
    local A, K = {}, {}
    for j, name in ipairs(file_fields) do
      A[name] = ARGV[a + j]
    end
    for j, name in ipairs(key_fields) do
      K[name] = KEYS[k + j - 1]
    end
    local ok, code, value = pcall(accept, K, A)
    if not ok then  -- code is the error
      local why = type(code) == 'table' and (code.err or '?') or tostring(code)
      pcall(dead_letter, 'invalid: could not be filed: ' .. why, A.raw)
      code, value = -4, why
    end
    out[#out + 1], out[#out + 2] = code, value
  end
end
for name, n in pairs(counts) do
  if n > 0 then
    redis.pcall('HINCRBY', KEYS[4], name, n)
  end
end
-- An intake list all filed goes, with its bitmap and its number.
for list, length in pairs(lengths) do
  local key = KEYS[1] .. ':' .. list
  local filed = redis.pcall('BITCOUNT', key .. ':filed')
  if type(filed) == 'number' and filed >= length then
    redis.pcall('DEL', key, key .. ':filed')
    redis.pcall('HDEL', KEYS[1] .. ':lists', list)
  end
end
return out
