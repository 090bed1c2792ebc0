-- Hands the in-flight messages of Bellhop processes whose heartbeat lapsed back to their
-- channels' queues, oldest first, so another process sends them; then forgets the process.
-- Two places per process and channel: its processing list (sends in flight) and its intake
-- hash (elements taken and not yet filed, outbound_take.lua), handed back in take order.
-- KEYS[1] outbound:gateways (zset, score = heartbeat deadline in epoch ms)
-- ARGV[1] now (epoch ms)   ARGV[2] key prefix   ARGV[3…] channel names
-- Returns the number of messages handed back.
-- The processing, intake and queue keys are derived, not declared (Bellhop does not run on
-- Cluster). At most `budget` intake elements move per call (a dead intake may hold tens of
-- thousands): a process with more left stays in outbound:gateways for the next call.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local moved = 0
local budget = 20000
for _, gateway in ipairs(lapsed) do
  local done = true
  for i = 3, #ARGV do
    local queue = ARGV[2] .. 'outbound:' .. ARGV[i]
    local processing = queue .. ':processing:' .. gateway
    while redis.call('RPOPLPUSH', processing, queue) do
      moved = moved + 1
    end
    -- Its call marks (outbound_claim.lua, outbound_finish.lua) guard nothing any more.
    redis.call('DEL', queue .. ':calls:' .. gateway)
    local intake = queue .. ':intake:' .. gateway
    if budget > 0 and redis.call('EXISTS', intake) == 1 then
      -- Take order: the numbers, sorted, when they fit the budget; beyond it (a process holds
      -- at most some 100,000), the budget's worth of numbers from the lowest one, found without
      -- a sort (numbers are given in runs from 1; filing leaves gaps, read as nothing).
      local numbered = {}
      local all = redis.call('HKEYS', intake)
      if #all <= budget then
        for _, field in ipairs(all) do
          numbered[#numbered + 1] = {tonumber(field) or 0, field}
        end
        table.sort(numbered, function(a, b) return a[1] < b[1] end)
      else
        local low
        for _, field in ipairs(all) do
          local number = tonumber(field)
          if number and (not low or number < low) then
            low = number
          end
        end
        for number = low or 0, (low or 0) + budget - 1 do
          numbered[#numbered + 1] = {number, string.format('%.0f', number)}
        end
      end
      local n = math.min(#numbered, budget)
      for j = 1, n, 1000 do
        local fields = {}
        for f = j, math.min(j + 999, n) do
          fields[#fields + 1] = numbered[f][2]
        end
        local values = redis.call('HMGET', intake, unpack(fields))
        for v = 1, #fields do
          -- LPUSH: the queue's back, as RPOPLPUSH does above; the oldest taken goes out first.
          if values[v] then
            redis.call('LPUSH', queue, values[v])
            moved = moved + 1
          end
        end
        redis.call('HDEL', intake, unpack(fields))
      end
      budget = budget - n
    end
    if redis.call('EXISTS', intake) == 1 then
      done = false
    end
  end
  if done then
    redis.call('ZREM', KEYS[1], gateway)
  end
end
return moved
