-- Takes elements off outbound:<channel> (the oldest first, as the engines LPUSH) into this
-- process's intake in one call, so the intake reads many elements per round trip and still
-- loses none: a process that dies holding them has them handed back by outbound_recover.lua,
-- in take order. Each element is filed (or dead-lettered) by outbound_accept.lua, which takes
-- it off the intake by its number (O(1), in whatever order the intake files).
-- Two ways, by the queue's length:
--  - up to ARGV[3] elements, or more than ARGV[4]: at most ARGV[1] of them, the oldest, into
--    the intake hash (KEYS[2], take number -> element), returned;
--  - in between (a campaign): the whole list, renamed to the intake list <KEYS[2]>:<ARGV[2]>, O(1)
--    however long it is, with its number and length recorded in <KEYS[2]>:lists (hash: number
--    -> length; an engine may LPUSH onto the list, its ACL being outbound:*: what goes beyond
--    that length is no element of the queue taken);
--    the intake reads it with LRANGE (its i-th element from the tail is numbered ARGV[2] + i),
--    and outbound_accept.lua marks each one filed in the bitmap <intake list>:filed.
--    Returns the list's length, a number: ARGV[2] .. ARGV[2] + length - 1 are its numbers.
-- A reply pushed behind a campaign of 50,000 is reached in the time the intake reads them,
-- not in the time Redis copies them into a hash one by one (docs/outbound.md, "Intake").
-- KEYS[1] outbound:<channel>   KEYS[2] this process's intake hash
-- ARGV[1] most to take into the hash   ARGV[2] the number of the first one taken
-- ARGV[3] the longest queue taken into the hash (longer: taken whole)
-- ARGV[4] the longest queue taken whole: a list's filed elements stay in it until all of it is
--   filed, so what a process holds in Redis stays about what it holds to file (100,000)
-- Returns the elements taken into the hash, oldest first (the i-th numbered ARGV[2] + i - 1),
-- or the length of the list taken whole.
-- LRANGE and LTRIM, not LMPOP: Redis 6.2 is still supported (docs/ai-engine.md).
local length = redis.call('LLEN', KEYS[1])  -- fails on a key of another type, as LRANGE did
if length == 0 then
  return {}
end
if length > tonumber(ARGV[3]) and length <= tonumber(ARGV[4]) then
  -- Recorded first: were the record to fail (a key of another type), nothing has moved.
  redis.call('HSET', KEYS[2] .. ':lists', ARGV[2], length)
  redis.call('RENAME', KEYS[1], KEYS[2] .. ':' .. ARGV[2])
  return length
end
local tail = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('LTRIM', KEYS[1], 0, -#tail - 1)
local elements = {}
for i = #tail, 1, -1 do  -- the list's tail is its oldest end
  elements[#elements + 1] = tail[i]
end
local seq = tonumber(ARGV[2])
local chunk = {}
for i, element in ipairs(elements) do
  chunk[#chunk + 1] = seq + i - 1
  chunk[#chunk + 1] = element
  if #chunk == 1000 or i == #elements then  -- a bounded unpack
    redis.call('HSET', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
return elements
