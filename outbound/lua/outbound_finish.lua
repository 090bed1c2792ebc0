-- Ends send attempts of messages in this process's processing list, a batch of outcomes in one
-- call (the dispatcher sends the outcomes that arrive together: docs/outbound.md). Each element
-- is one of
--   sent    status sent (and the provider's id mapped to ours for status callbacks)
--   defer   back to the delayed set due then (a recipient's limit said when); no attempt
--   requeue back to the ready set at the front of its priority (a limit of the whole channel
--           refused it: the dispatcher waits, the message keeps its place); no attempt
--   retry   an attempt counted, then delayed until its due time
--   dead    an attempt counted, onto the dead list with the reason, status failed
-- and is handled on its own, in order: what one element does is what a call with it alone
-- would do, and an element that fails (a key of the wrong type) fails alone.
-- KEYS[1] processing list   KEYS[2] stats (hash)   KEYS[3] delayed (zset)   KEYS[4] dead list
-- KEYS[5] ready (zset)   KEYS[6] this process's call marks for the channel (hash
-- outbound:<channel>:calls:<gateway>, field finish = the number of the last batch recorded)
-- then six per element, from KEYS[7]: message:<id>, the provider id key (sent),
-- property:<pid>:seq, property:<pid>:events, optout:<channel>:<to> (set when it opted out),
-- stats:minute:<epoch minute> (sent: its `out` counts the message; the admin page's chart)
-- ARGV[1] message TTL (s)   ARGV[2] history cap   ARGV[3] TTL of the stats:minute keys (s)
-- ARGV[4] this batch's number (the process's batches on the channel count up from 1; a batch
-- run again after its answer was lost keeps its number): a batch numbered at or below the last
-- one recorded has run already and does nothing. Without it, a batch run again could take off
-- the processing list a message that it had put back (requeue, defer, retry) and that was
-- claimed again in between, and put it back a second time while it was being sent.
-- then fifteen per element, from ARGV[5]: mode, the message as in the processing list,
-- now (RFC 3339), due (epoch ms: defer, retry), provider message id, reason, error code,
-- pub/sub channel of the message.status event ('' = no event), property_id, the event's data
-- (its ts is now), dead letter JSON, '1' when the recipient opted out (later sends to them fail
-- at once), how it was sent when not as itself ('template': WhatsApp's template in place of a
-- text; '' otherwise), the record's attempts after this one as the claim counted them ('' =
-- unknown: counted by an HINCRBY), '1' when the claim saw a reason or error_code on the record
-- (a sent message's record drops them: an HDEL only then)
-- Returns one value per element: 1 recorded; 0 when the message was no longer in the
-- processing list (another process recovered it, or this very batch ran before and its answer
-- was lost; nothing is changed then, except that a send that happened and is not recorded yet
-- is recorded); or the error's text when the element failed.
--#include event.lua
local PER_KEYS, PER_ARGS = 6, 15
local ttl, history_max, minute_ttl = ARGV[1], ARGV[2], ARGV[3]
local counted = {}       -- stats field -> messages
local minutes, minute_keys = {}, {}  -- stats:minute key -> messages sent, and the keys in order

local function count(field)
  counted[field] = (counted[field] or 0) + 1
end

-- A batch's events of one property take consecutive seqs: the first through append_event (which
-- checks the counter against the history), the next ones after it, the counter set once at the
-- end (nothing else runs in between: a script is atomic). property:<pid>:seq -> the last seq.
local seqs, seq_keys = {}, {}
local function flush_seq(seq_key)
  if seqs[seq_key] and seqs[seq_key].ahead then
    redis.call('SET', seq_key, string.format('%d', seqs[seq_key].seq), 'KEEPTTL')
  end
  seqs[seq_key] = nil
end
local function add_event(seq_key, stream_key, property_id, data, now)
  local last = seqs[seq_key]
  if last then
    local seq = last.seq + 1
    local json = event_json(seq, property_id, 'message.status', data, now)
    local added = redis.pcall('XADD', stream_key, string.format('%d-0', seq), 'event', json)
    if type(added) ~= 'table' or not added.err then
      last.seq, last.ahead = seq, true
      if seq % TRIM_EVERY == 0 then
        redis.call('XTRIM', stream_key, 'MAXLEN', '~', history_max)
      end
      return json
    end
    flush_seq(seq_key)  -- the slow way, from the counter as it stands
  end
  local seq, json = append_event(seq_key, stream_key, history_max, property_id, 'message.status',
                                 data, now)
  if seq then
    if not seqs[seq_key] then
      seq_keys[#seq_keys + 1] = seq_key
    end
    seqs[seq_key] = {seq = seq, ahead = false}
  end
  return json
end

local function finish(k, a)
  local mode, message, now, due = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local provider_id, reason, error_code = ARGV[a + 4], ARGV[a + 5], ARGV[a + 6]
  local record = KEYS[k]
  if mode ~= 'sent' and mode ~= 'defer' and mode ~= 'requeue' and mode ~= 'retry' and
      mode ~= 'dead' then
    return 'unknown mode ' .. mode
  end
  -- From the tail: the processing list's oldest sends, which end first.
  local removed = redis.call('LREM', KEYS[1], -1, message)
  if removed == 0 and
      (mode ~= 'sent' or redis.call('HGET', record, 'provider_message_id') == provider_id) then
    return 0  -- recovered elsewhere, or this very call ran already (its answer was lost)
  end
  -- A sent message taken off the list: its attempts are the claim's count plus this one (no
  -- other process changes a record while its message is in this list).
  local attempts = removed == 1 and mode == 'sent' and ARGV[a + 13] ~= '' and ARGV[a + 13]
  if not attempts and (mode == 'retry' or mode == 'dead' or mode == 'sent') then
    -- pcall: the message is off the processing list and not yet in the delayed set or the
    -- dead list; a record that is not a hash (or attempts not a number) must not lose it.
    redis.pcall('HINCRBY', record, 'attempts', 1)
  end
  local function event()
    local channel = ARGV[a + 7]
    if channel ~= '' then
      local ev = add_event(KEYS[k + 2], KEYS[k + 3], ARGV[a + 8], ARGV[a + 9], now)
      if ev then
        redis.call('PUBLISH', channel, ev)
      end
    end
  end
  if mode == 'sent' then
    local sent_as = ARGV[a + 12]
    if attempts and sent_as ~= '' then
      redis.call('HSET', record, 'status', 'sent', 'provider_message_id', provider_id, 'sent_at',
                 now, 'attempts', attempts, 'sent_as', sent_as)
    elseif attempts then
      redis.call('HSET', record, 'status', 'sent', 'provider_message_id', provider_id, 'sent_at',
                 now, 'attempts', attempts)
    else
      redis.call('HSET', record, 'status', 'sent', 'provider_message_id', provider_id, 'sent_at', now)
      if sent_as ~= '' then
        redis.call('HSET', record, 'sent_as', sent_as)
      end
    end
    if not attempts or ARGV[a + 14] == '1' then
      redis.call('HDEL', record, 'reason', 'error_code')
    end
    redis.call('EXPIRE', record, ttl)
    if provider_id ~= '' then
      redis.call('SET', KEYS[k + 1], string.match(message, '^{"id":"([^"]*)"') or '', 'EX', ttl)
    end
    count('sent')
    local minute = KEYS[k + 5]
    if not minutes[minute] then
      minutes[minute] = 0
      minute_keys[#minute_keys + 1] = minute
    end
    minutes[minute] = minutes[minute] + 1
    event()
  elseif mode == 'defer' then
    redis.call('ZADD', KEYS[3], due, message)
    count('deferred')
  elseif mode == 'requeue' then
    local priority = tonumber(string.match(message, '^{"id":"[^"]*","priority":(%d+)')) or 5
    redis.call('ZADD', KEYS[5], priority * 1e12, message)
    count('deferred')
  elseif mode == 'retry' then
    redis.call('ZADD', KEYS[3], due, message)
    redis.call('HSET', record, 'reason', reason, 'error_code', error_code)
    count('retried')
  else  -- dead
    if ARGV[a + 11] == '1' then
      redis.call('SET', KEYS[k + 4], now)
    end
    redis.call('LPUSH', KEYS[4], ARGV[a + 10])
    redis.call('HSET', record, 'status', 'failed', 'reason', reason, 'error_code', error_code,
               'failed_at', now)
    redis.call('EXPIRE', record, ttl)
    count('failed')
    event()
  end
  return 1
end

local n = math.floor((#ARGV - 4) / PER_ARGS)
if #KEYS ~= 6 + n * PER_KEYS or #ARGV ~= 4 + n * PER_ARGS or not tonumber(ARGV[4]) then
  return redis.error_reply('outbound_finish: ' .. #KEYS .. ' keys and ' .. #ARGV ..
                           ' arguments do not make whole elements')
end
local batch = tonumber(ARGV[4])
-- Under pcall: a key of another type there (nothing of Bellhop's writes one) costs the guard,
-- never the batch (each element still checks the processing list).
local done = redis.pcall('HGET', KEYS[6], 'finish')
if (type(done) == 'string' and tonumber(done) or 0) >= batch then
  return {}  -- recorded already (this batch's answer was lost, or it reached Redis late)
end
redis.pcall('HSET', KEYS[6], 'finish', string.format('%d', batch))
redis.pcall('EXPIRE', KEYS[6], 86400)
local out = {}
for i = 0, n - 1 do
  local ok, result = pcall(finish, 7 + i * PER_KEYS, 5 + i * PER_ARGS)
  if not ok then
    result = type(result) == 'table' and tostring(result.err) or tostring(result)
  end
  out[#out + 1] = result
end
for _, seq_key in ipairs(seq_keys) do
  flush_seq(seq_key)
end
-- The counters once per batch, by as many as its elements added.
for field, by in pairs(counted) do
  redis.call('HINCRBY', KEYS[2], field, by)
end
for _, minute in ipairs(minute_keys) do
  redis.call('HINCRBY', minute, 'out', minutes[minute])
  redis.call('EXPIRE', minute, minute_ttl)
end
return out
