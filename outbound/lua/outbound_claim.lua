-- Takes the next messages to send: first promotes due retries and rate-limited sends from the
-- delayed set (in batches), then, unless the channel is paused, moves up to N of the ready
-- messages with the lowest scores (priority, then arrival) into this process's processing list.
-- A bulk message (priority 5 to 10) of a property inside its quiet hours is not taken: it goes
-- to the delayed set, due when they end, with its record `delayed` (reason quiet_hours).
-- KEYS[1] ready (zset)   KEYS[2] processing list   KEYS[3] delayed (zset)   KEYS[4] paused flag
-- KEYS[5] arrivals counter   KEYS[6] quiet (zset: ids of messages held for quiet hours)
-- KEYS[7] stats (hash)   KEYS[8] this process's call marks for the channel (hash
-- outbound:<channel>:calls:<gateway>, field claim = "<call number> <messages taken>")
-- ARGV[1] now (epoch ms)   ARGV[2] most to promote   ARGV[3] most to take
-- ARGV[4] prefix of message keys ('message:' with the key prefix)
-- ARGV[5] prefix of the channel's opted-out recipients ('optout:<channel>:'), '' if none
-- ARGV[6] most to hold for quiet hours in this call
-- ARGV[7] prefix of conversation records ('conversation:' with the key prefix); '' when the
-- dispatcher needs neither the window nor the guest's account (last_inbound_at -1, account '')
-- ARGV[8] '1' when the channel has a customer-service window (WhatsApp), else '0'
-- ARGV[9] this call's number (the process's claims on the channel count up from 1)
-- ARGV[10] the number of the first claim whose answer was lost since the last answered one, or
-- 0: that claim, or a later one, may have run and moved messages into the processing list that
-- the process never learned of. The last claim that ran took the newest `taken` elements at
-- the list's head (nothing else pushes there, and the process ended none of them); this call
-- hands them back to the ready set, at the front of their priority, before it claims. A call
-- numbered at or below the last one that ran (a lost call that reached Redis late) does
-- nothing at all.
-- ARGV[11…] per property inside its quiet hours now, three values: property_id, when they end
-- (epoch ms, > now), the same as RFC 3339
-- Returns {paused 0/1, next due (epoch ms, -1 none), held, then five values per message taken:
-- json, attempts, last_inbound_at, account, stale}; attempts -1: the recipient opted out, so the
-- message must fail without a send; last_inbound_at: the last_inbound_at of the conversation
-- the message's record names (epoch ms), -1 when it names none, the conversation has none, or
-- ARGV[8] is '0' (a conversation from before last_inbound_at was written, docs/upgrading.md,
-- answers with the received_at of the newest guest message among its recent messages);
-- account: the account the guest of that conversation last wrote to ('' when none is known),
-- which the reply goes out from unless the message names one (docs/outbound.md); stale: 1 when
-- the record has a reason or an error_code (of an earlier attempt, or a dead letter retried),
-- which outbound_finish.lua drops when the message is sent, else 0.
local function priority_of(message)  -- Bellhop writes id then priority first
  return tonumber(string.match(message, '^{"id":"[^"]*","priority":(%d+)')) or 5
end
-- Epoch ms of an RFC 3339 UTC time as Bellhop writes it ("2026-11-22T10:00:00.123Z"), or nil.
local function epoch_ms(text)
  local y, mo, d, h, mi, sec, frac = string.match(text or '',
      '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)Z$')
  if not y then
    return nil
  end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then  -- days from the civil date (H. Hinnant's days_from_civil)
    y = y - 1
  end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + tonumber(d) - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local ms = tonumber(string.sub(frac .. '000', 1, 3))
  return ((days * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60000 + tonumber(sec) * 1000 + ms
end
-- The guest's last message time of a conversation without last_inbound_at (written before it
-- existed): its newest inbound message among the recent ones, -1 if none.
local function legacy_last_inbound(messages_key)
  local recent = redis.pcall('LRANGE', messages_key, 0, 99)
  if type(recent) ~= 'table' or recent.err then
    return -1
  end
  for _, m in ipairs(recent) do
    if string.find(m, '"direction":"inbound"', 1, true) then
      local ok, decoded = pcall(cjson.decode, m)
      if ok and type(decoded) == 'table' and decoded.direction == 'inbound' then
        return epoch_ms(decoded.received_at) or -1
      end
    end
  end
  return -1
end
local function id_of(message)
  return string.match(message, '^{"id":"([^"]*)"') or ''
end
-- The claims' marks: a late call changes nothing; a lost one's messages go back. The marks are
-- read and written under pcall: a key of another type there (nothing of Bellhop's writes one)
-- costs those two guarantees, never the claim.
local call = tonumber(ARGV[9]) or 0
local marks = redis.pcall('HGET', KEYS[8], 'claim')
local last_call, last_taken = string.match(type(marks) == 'string' and marks or '', '^(%d+) (%d+)$')
last_call, last_taken = tonumber(last_call), tonumber(last_taken)
if last_call and last_call >= call then
  return {0, -1, 0}
end
local unsure = tonumber(ARGV[10]) or 0
if unsure > 0 and last_call and last_call >= unsure and last_taken > 0 then
  local lost = redis.call('LPOP', KEYS[2], last_taken)
  for _, message in ipairs(lost or {}) do
    redis.call('ZADD', KEYS[1], priority_of(message) * 1e12, message)
  end
end
local function mark(taken_now)
  redis.pcall('HSET', KEYS[8], 'claim', string.format('%d %d', call, taken_now))
  redis.pcall('EXPIRE', KEYS[8], 86400)
end

local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, message in ipairs(due) do
  redis.call('ZREM', KEYS[3], message)
  redis.call('ZADD', KEYS[1], priority_of(message) * 1e12 + redis.call('INCR', KEYS[5]), message)
  local id = id_of(message)
  if redis.call('ZREM', KEYS[6], id) == 1 and redis.call('HGET', ARGV[4] .. id, 'status') == 'delayed' then
    redis.call('HSET', ARGV[4] .. id, 'status', 'queued')
    redis.call('HDEL', ARGV[4] .. id, 'reason', 'due_at')
  end
end
-- Ids whose quiet hours ended an hour ago and that are still here left the delayed set another
-- way (a process of a version without quiet hours promoted them): no longer waiting.
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', '(' .. (tonumber(ARGV[1]) - 3600000))
if redis.call('EXISTS', KEYS[4]) == 1 then
  mark(0)
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {1, first[2] and math.floor(tonumber(first[2])) or -1, 0}
end
local quiet = {}  -- property_id -> {until ms, until RFC 3339}
for i = 11, #ARGV - 2, 3 do
  quiet[ARGV[i]] = {ARGV[i + 1], ARGV[i + 2]}
end
local out = {0, -1, 0}
local taken = {}  -- into the processing list in one LPUSH per batch popped, in the pop order
local want = tonumber(ARGV[3])
local held, max_held = 0, tonumber(ARGV[6])
while want > 0 do
  local top = redis.call('ZPOPMIN', KEYS[1], want)
  if #top == 0 then
    break
  end
  for i = 1, #top, 2 do
    local message = top[i]
    local id = id_of(message)
    local pid = string.match(message, '^{"id":"[^"]*","priority":%d+,"property_id":"([^"]*)"')
    local q = pid and quiet[pid]
    if q and priority_of(message) >= 5 then
      redis.call('ZADD', KEYS[3], q[1], message)
      redis.call('ZADD', KEYS[6], q[1], id)
      -- pcall: a record that is not a hash must not end the call with messages popped above
      -- and not yet pushed to the processing list.
      if redis.call('EXISTS', ARGV[4] .. id) == 1 then
        redis.pcall('HSET', ARGV[4] .. id, 'status', 'delayed', 'reason', 'quiet_hours', 'due_at', q[2])
      end
      held = held + 1
    else
      taken[#taken + 1] = message
      out[#out + 1] = message
      local to = ARGV[5] ~= '' and string.match(message,
          '^{"id":"[^"]*","priority":%d+,"property_id":"[^"]*","channel":"[^"]*","to":"([^"\\]*)"')
      -- A record that is not a hash reads as none (attempts 0): an error here would end the
      -- call with messages popped and not yet pushed.
      local record
      if ARGV[7] ~= '' then
        record = redis.pcall('HMGET', ARGV[4] .. id, 'attempts', 'reason', 'error_code',
                             'conversation_id')
      else
        record = redis.pcall('HMGET', ARGV[4] .. id, 'attempts', 'reason', 'error_code')
      end
      if type(record) ~= 'table' or record.err then
        record = {}
      end
      if to and redis.call('EXISTS', ARGV[5] .. to) == 1 then
        out[#out + 1] = -1
      else
        out[#out + 1] = tonumber(record[1] or '0') or 0
      end
      local last_inbound_at, account = -1, ''
      if record[4] and record[4] ~= '' then
        local conversation = ARGV[7] .. record[4]
        local state = redis.pcall('HMGET', conversation, 'last_inbound_at', 'account')
        if type(state) == 'table' and not state.err then
          account = state[2] or ''
          if ARGV[8] == '1' then
            last_inbound_at = tonumber(state[1]) or legacy_last_inbound(conversation .. ':messages')
          end
        end
      end
      out[#out + 1] = last_inbound_at
      out[#out + 1] = account
      out[#out + 1] = (record[2] or record[3]) and 1 or 0
      want = want - 1
    end
  end
  for from = 1, #taken, 1000 do  -- unpack's stack is bounded
    redis.call('LPUSH', KEYS[2], unpack(taken, from, math.min(from + 999, #taken)))
  end
  taken = {}
  if held >= max_held then
    break
  end
end
-- Marked before anything that could fail: what it took must be found again if no answer comes.
mark((#out - 3) / 5)
if held > 0 then
  redis.pcall('HINCRBY', KEYS[7], 'quiet_held', held)
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
out[2] = first[2] and math.floor(tonumber(first[2])) or -1
out[3] = held
return out
