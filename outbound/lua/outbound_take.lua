-- Takes up to N elements off outbound:<channel> (the oldest first, as the engines LPUSH) into
-- this process's intake hash in one call, so the intake reads many elements per round trip and
-- still loses none: a process that dies holding them has them handed back by
-- outbound_recover.lua, in take order. Each element is filed (or dead-lettered) by
-- outbound_accept.lua, which takes it off the hash by its number (O(1), in whatever order the
-- intake files).
-- KEYS[1] outbound:<channel>   KEYS[2] this process's intake (hash: take number -> element)
-- ARGV[1] most to take   ARGV[2] the number of the first one taken
-- Returns the elements taken, oldest first: the i-th is numbered ARGV[2] + i - 1.
-- LRANGE and LTRIM, not LMPOP: Redis 6.2 is still supported (docs/ai-engine.md).
local tail = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)
if #tail == 0 then
  return {}
end
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
