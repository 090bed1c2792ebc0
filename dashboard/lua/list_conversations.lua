-- One page of a property's conversations, latest activity first
-- (GET /v1/properties/{id}/conversations).
--
-- KEYS[1] property:<pid>:conversation_index (zset, score = last activity, epoch ms)
-- KEYS[2] property:<pid>:unread (hash cid -> guest messages staff have not read)
-- ARGV[1] prefix of the conversation records: key_space::conversation("")
-- ARGV[2] cutoff (epoch ms): entries older than this belong to expired records
-- ARGV[3] upper bound of the page: '+inf', or '(<before>' (exclusive)
-- ARGV[4] page size
-- Returns {next_before, unread total, member, score, {HGETALL…}, last message JSON or false,
-- member, …}; next_before is the last score of the page while older entries remain, ''
-- otherwise. The last message is the head of conversation:<cid>:messages (newest first). The
-- unread total is the property's, over every conversation (not just the page); entries of
-- conversations that expired leave the unread hash here.
--
-- The records are read by names built here rather than passed in KEYS: which ones is only
-- known after the range read. Fine on one Redis (Bellhop does not support Redis Cluster).
local index, limit = KEYS[1], tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. ARGV[2])

local unread = redis.call('HGETALL', KEYS[2])
local total = 0
for i = 1, #unread, 2 do
  if redis.call('EXISTS', ARGV[1] .. unread[i]) == 1 then
    total = total + (tonumber(unread[i + 1]) or 0)
  else
    redis.call('HDEL', KEYS[2], unread[i])
  end
end

local out, found, last = {'', total}, 0, nil
-- Adds a conversation to the page; an entry whose record is gone (deleted, or expired while
-- the entry is recent, e.g. across clocks) leaves the index instead.
local function take(member, score)
  local record = redis.call('HGETALL', ARGV[1] .. member)
  if #record == 0 then
    redis.call('ZREM', index, member)
    return
  end
  out[#out + 1] = member
  out[#out + 1] = score
  out[#out + 1] = record
  out[#out + 1] = redis.call('LINDEX', ARGV[1] .. member .. ':messages', 0)
  found = found + 1
  last = score
end

-- Removed entries shift the rest up: each round continues at offset `found`.
while found < limit do
  local batch = redis.call('ZREVRANGEBYSCORE', index, ARGV[3], '-inf', 'WITHSCORES', 'LIMIT',
                           found, limit - found)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do take(batch[i], batch[i + 1]) end
end

if last then
  -- The next page asks for scores below `last`: conversations sharing the last millisecond
  -- must all be on this page, or the ones cut off would never be listed.
  if found == limit then
    local on_page = 0
    for i = #out - 2, 4, -4 do
      if out[i] ~= last then break end
      on_page = on_page + 1
    end
    local ties = redis.call('ZREVRANGEBYSCORE', index, last, last)
    for i = on_page + 1, #ties do take(ties[i], last) end
  end
  if redis.call('ZCOUNT', index, '-inf', '(' .. last) > 0 then out[1] = last end
end
return out
