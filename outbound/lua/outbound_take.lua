-- Takes up to N elements off outbound:<channel> (the oldest first, as the engines LPUSH) into
-- this process's intake hash in one call, so the intake reads many elements per round trip and
-- still loses none: a process that dies holding them has them handed back by
-- outbound_recover.lua, in take order. Each element is filed (or dead-lettered) by
-- outbound_accept.lua, which takes it off the hash by its number (O(1), in whatever order the
-- intake files).
-- KEYS[1] outbound:<channel>   KEYS[2] this process's intake (hash: take number -> element)
-- ARGV[1] most to take   ARGV[2] the number of the first one taken
-- Returns the elements taken, oldest first: the i-th is numbered ARGV[2] + i - 1.
local taken = redis.call('LMPOP', 1, KEYS[1], 'RIGHT', 'COUNT', ARGV[1])
if not taken then
  return {}
end
local elements = taken[2]
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
