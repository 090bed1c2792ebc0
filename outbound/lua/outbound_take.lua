-- Takes up to N elements off outbound:<channel> (the oldest first, as the engines LPUSH) into
-- this process's intake set in one call, so the intake reads many elements per round trip and
-- still loses none: a process that dies holding them has them handed back by
-- outbound_recover.lua, in take order. Each element is filed (or dead-lettered) by
-- outbound_accept.lua, which takes it off the set by its sequence number (O(log N), whatever
-- the order the intake files in).
-- KEYS[1] outbound:<channel>   KEYS[2] this process's intake (zset: score = sequence number,
--                                      member '<seq>:<element>', unique even for equal elements)
-- ARGV[1] most to take   ARGV[2] the sequence number of the first one taken
-- Returns the elements taken, oldest first: the i-th has sequence number ARGV[2] + i - 1.
local taken = redis.call('LMPOP', 1, KEYS[1], 'RIGHT', 'COUNT', ARGV[1])
if not taken then
  return {}
end
local elements = taken[2]
local seq = tonumber(ARGV[2])
local chunk = {}
for i, element in ipairs(elements) do
  local n = seq + i - 1
  chunk[#chunk + 1] = n
  chunk[#chunk + 1] = n .. ':' .. element
  if #chunk == 500 or i == #elements then  -- bounded unpack
    redis.call('ZADD', KEYS[2], unpack(chunk))
    chunk = {}
  end
end
return elements
