-- Ends one send attempt of a message in this process's processing list:
--   sent    status sent (and the provider's id mapped to ours for status callbacks)
--   defer   back to the delayed set due at ARGV[4] (a recipient's limit said when); no attempt
--   requeue back to the ready set at the front of its priority (a limit of the whole channel
--           refused it: the dispatcher waits, the message keeps its place); no attempt
--   retry   an attempt counted, then delayed until ARGV[4]
--   dead    an attempt counted, onto the dead list with the reason, status failed
-- KEYS[1] processing list   KEYS[2] message:<id>   KEYS[3] stats (hash)   KEYS[4] delayed
-- KEYS[5] dead list   KEYS[6] provider id key (sent)   KEYS[7] property:<pid>:seq
-- KEYS[8] property:<pid>:events   KEYS[10] ready (zset)   KEYS[9] optout:<channel>:<to> (set when ARGV[14] is '1')
-- KEYS[11] stats:minute:<epoch minute> (sent: its `out` counts the message; the admin page's chart)
-- ARGV[1] mode   ARGV[2] the message as in the processing list   ARGV[3] now (RFC 3339)
-- ARGV[4] due (epoch ms)   ARGV[5] provider message id   ARGV[6] reason   ARGV[7] error code
-- ARGV[8] message TTL (s)   ARGV[9] pub/sub channel ('' = no event)   ARGV[10] history cap
-- ARGV[11] property_id   ARGV[12] data of the message.status event (its ts is ARGV[3])
-- ARGV[13] dead letter JSON   ARGV[14] '1': the recipient opted out (later sends to them fail
-- at once)   ARGV[15] sent: how it was sent when not as itself ('template': WhatsApp's
-- template in place of a text; '' otherwise)   ARGV[16] TTL of KEYS[11] (s)
-- Returns {1, attempts} or {0} when the message was no longer in the processing list (another
-- process recovered it, or this call was run before and its answer lost; nothing is changed
-- then, except that a send that happened and is not recorded yet is recorded).
--#include event.lua
local mode = ARGV[1]
local removed = redis.call('LREM', KEYS[1], 1, ARGV[2])
if removed == 0 and (mode ~= 'sent' or redis.call('HGET', KEYS[2], 'provider_message_id') == ARGV[5]) then
  return {0}  -- recovered elsewhere, or this very call ran already (its answer was lost)
end
local attempts = 0
if mode == 'retry' or mode == 'dead' or mode == 'sent' then
  attempts = redis.call('HINCRBY', KEYS[2], 'attempts', 1)
end
local function event()
  if ARGV[9] ~= '' then
    local seq, ev = append_event(KEYS[7], KEYS[8], ARGV[10], ARGV[11], 'message.status',
                                 ARGV[12], ARGV[3])
    if seq then
      redis.call('PUBLISH', ARGV[9], ev)
    end
  end
end
if mode == 'sent' then
  redis.call('HSET', KEYS[2], 'status', 'sent', 'provider_message_id', ARGV[5], 'sent_at', ARGV[3])
  redis.call('HDEL', KEYS[2], 'reason', 'error_code')
  if ARGV[15] and ARGV[15] ~= '' then
    redis.call('HSET', KEYS[2], 'sent_as', ARGV[15])
  end
  redis.call('EXPIRE', KEYS[2], ARGV[8])
  if ARGV[5] ~= '' then
    redis.call('SET', KEYS[6], string.match(ARGV[2], '^{"id":"([^"]*)"') or '', 'EX', ARGV[8])
  end
  redis.call('HINCRBY', KEYS[3], 'sent', 1)
  redis.call('HINCRBY', KEYS[11], 'out', 1)
  redis.call('EXPIRE', KEYS[11], ARGV[16])
  event()
elseif mode == 'defer' then
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
  redis.call('HINCRBY', KEYS[3], 'deferred', 1)
elseif mode == 'requeue' then
  local priority = tonumber(string.match(ARGV[2], '^{"id":"[^"]*","priority":(%d+)')) or 5
  redis.call('ZADD', KEYS[10], priority * 1e12, ARGV[2])
  redis.call('HINCRBY', KEYS[3], 'deferred', 1)
elseif mode == 'retry' then
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
  redis.call('HSET', KEYS[2], 'reason', ARGV[6], 'error_code', ARGV[7])
  redis.call('HINCRBY', KEYS[3], 'retried', 1)
elseif mode == 'dead' then
  if ARGV[14] == '1' then
    redis.call('SET', KEYS[9], ARGV[3])
  end
  redis.call('LPUSH', KEYS[5], ARGV[13])
  redis.call('HSET', KEYS[2], 'status', 'failed', 'reason', ARGV[6], 'error_code', ARGV[7],
             'failed_at', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[8])
  redis.call('HINCRBY', KEYS[3], 'failed', 1)
  event()
else
  return redis.error_reply('unknown mode ' .. mode)
end
return {1, attempts}
