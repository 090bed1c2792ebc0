-- One channel's queue figures, read together.
-- KEYS[1] outbound:<channel>   KEYS[2] ready   KEYS[3] delayed   KEYS[4] dead   KEYS[5] paused
-- KEYS[6] stats (hash)   KEYS[7] outbound:gateways   KEYS[8] quiet (zset)
-- ARGV[1] prefix of processing lists ('outbound:<channel>:processing:')
-- ARGV[2] prefix of intake hashes ('outbound:<channel>:intake:'; absent: none counted), and
-- of their lists
-- Returns {waiting, active, delayed, dead, paused, {counter, value, …}, quiet}; waiting: in
-- the queue, taken by an intake and not filed yet, and ready; quiet: the delayed messages that
-- wait for their property's quiet hours to end.
local active, taken = 0, 0
for _, gateway in ipairs(redis.call('ZRANGE', KEYS[7], 0, -1)) do
  active = active + redis.call('LLEN', ARGV[1] .. gateway)
  if ARGV[2] then
    local intake = ARGV[2] .. gateway
    taken = taken + redis.call('HLEN', intake)
    -- Its intake lists (queues taken whole): their elements not filed yet.
    local lists = redis.call('HGETALL', intake .. ':lists')  -- number -> length
    for j = 1, #lists, 2 do
      local left = (tonumber(lists[j + 1]) or 0) -
                   redis.call('BITCOUNT', intake .. ':' .. lists[j] .. ':filed')
      taken = taken + math.max(0, left)
    end
  end
end
return {redis.call('LLEN', KEYS[1]) + taken + redis.call('ZCARD', KEYS[2]), active,
        redis.call('ZCARD', KEYS[3]), redis.call('LLEN', KEYS[4]), redis.call('EXISTS', KEYS[5]),
        redis.call('HGETALL', KEYS[6]), redis.call('ZCARD', KEYS[8])}
