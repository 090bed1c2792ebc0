-- Takes the next messages to send: first promotes due retries and rate-limited sends from the
-- delayed set (in batches), then, unless the channel is paused, moves up to N of the ready
-- messages with the lowest scores (priority, then arrival) into this process's processing list.
-- KEYS[1] ready (zset)   KEYS[2] processing list   KEYS[3] delayed (zset)   KEYS[4] paused flag
-- KEYS[5] arrivals counter
-- ARGV[1] now (epoch ms)   ARGV[2] most to promote   ARGV[3] most to take
-- ARGV[4] prefix of message keys ('message:' with the key prefix)
-- ARGV[5] prefix of the channel's opted-out recipients ('optout:<channel>:'), '' if none
-- ARGV[6] prefix of conversation keys ('conversation:' with the key prefix)
-- Returns {paused 0/1, next due (epoch ms, -1 none), json1, attempts1, account1, json2, …};
-- attempts -1: the recipient opted out, so the message must fail without a send; account: the
-- account the guest of the message's conversation last wrote to ('' when none is known), which
-- the reply goes out from unless the message names one (docs/outbound.md).
local function priority_of(message)  -- Bellhop writes id then priority first
  return tonumber(string.match(message, '^{"id":"[^"]*","priority":(%d+)')) or 5
end
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, message in ipairs(due) do
  redis.call('ZREM', KEYS[3], message)
  redis.call('ZADD', KEYS[1], priority_of(message) * 1e12 + redis.call('INCR', KEYS[5]), message)
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
local next_due = first[2] and math.floor(tonumber(first[2])) or -1
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {1, next_due}
end
local out = {0, next_due}
local top = redis.call('ZPOPMIN', KEYS[1], ARGV[3])
for i = 1, #top, 2 do
  local message = top[i]
  redis.call('LPUSH', KEYS[2], message)
  local id = string.match(message, '^{"id":"([^"]*)"') or ''
  out[#out + 1] = message
  local to = ARGV[5] ~= '' and string.match(message,
      '^{"id":"[^"]*","priority":%d+,"property_id":"[^"]*","channel":"[^"]*","to":"([^"\\]*)"')
  local record = redis.call('HMGET', ARGV[4] .. id, 'attempts', 'conversation_id')
  if to and redis.call('EXISTS', ARGV[5] .. to) == 1 then
    out[#out + 1] = -1
  else
    out[#out + 1] = tonumber(record[1] or '0')
  end
  local account = record[2] and record[2] ~= '' and
      redis.call('HGET', ARGV[6] .. record[2], 'account')
  out[#out + 1] = account or ''
end
return out
