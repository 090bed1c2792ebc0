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
-- KEYS[5] ready (zset)
-- then six per element, from KEYS[6]: message:<id>, the provider id key (sent),
-- property:<pid>:seq, property:<pid>:events, optout:<channel>:<to> (set when it opted out),
-- stats:minute:<epoch minute> (sent: its `out` counts the message; the admin page's chart)
-- ARGV[1] message TTL (s)   ARGV[2] history cap   ARGV[3] TTL of the stats:minute keys (s)
-- then thirteen per element, from ARGV[4]: mode, the message as in the processing list,
-- now (RFC 3339), due (epoch ms: defer, retry), provider message id, reason, error code,
-- pub/sub channel of the message.status event ('' = no event), property_id, the event's data
-- (its ts is now), dead letter JSON, '1' when the recipient opted out (later sends to them fail
-- at once), how it was sent when not as itself ('template': WhatsApp's template in place of a
-- text; '' otherwise)
-- Returns one value per element: 1 recorded; 0 when the message was no longer in the
-- processing list (another process recovered it, or this very batch ran before and its answer
-- was lost; nothing is changed then, except that a send that happened and is not recorded yet
-- is recorded); or the error's text when the element failed.
--#include event.lua
local PER_KEYS, PER_ARGS = 6, 13
local ttl, history_max, minute_ttl = ARGV[1], ARGV[2], ARGV[3]
local counted = {}       -- stats field -> messages
local minutes, minute_keys = {}, {}  -- stats:minute key -> messages sent, and the keys in order

local function count(field)
  counted[field] = (counted[field] or 0) + 1
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
  if mode == 'retry' or mode == 'dead' or mode == 'sent' then
    redis.call('HINCRBY', record, 'attempts', 1)
  end
  local function event()
    local channel = ARGV[a + 7]
    if channel ~= '' then
      local seq, ev = append_event(KEYS[k + 2], KEYS[k + 3], history_max, ARGV[a + 8],
                                   'message.status', ARGV[a + 9], now)
      if seq then
        redis.call('PUBLISH', channel, ev)
      end
    end
  end
  if mode == 'sent' then
    redis.call('HSET', record, 'status', 'sent', 'provider_message_id', provider_id, 'sent_at', now)
    redis.call('HDEL', record, 'reason', 'error_code')
    if ARGV[a + 12] ~= '' then
      redis.call('HSET', record, 'sent_as', ARGV[a + 12])
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

local n = math.floor((#ARGV - 3) / PER_ARGS)
if #KEYS ~= 5 + n * PER_KEYS or #ARGV ~= 3 + n * PER_ARGS then
  return redis.error_reply('outbound_finish: ' .. #KEYS .. ' keys and ' .. #ARGV ..
                           ' arguments do not make whole elements')
end
local out = {}
for i = 0, n - 1 do
  local ok, result = pcall(finish, 6 + i * PER_KEYS, 4 + i * PER_ARGS)
  if not ok then
    result = type(result) == 'table' and tostring(result.err) or tostring(result)
  end
  out[#out + 1] = result
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
