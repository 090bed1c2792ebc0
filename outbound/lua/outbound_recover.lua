-- Hands the in-flight messages of Bellhop processes whose heartbeat lapsed back to their
-- channels' queues, oldest first, so another process sends them; then forgets the process.
-- Three places per process and channel: its processing list (sends in flight), its intake
-- hash (elements taken and not yet filed, outbound_take.lua) and its intake lists (queues
-- taken whole: the elements whose bit is not set in <list>:filed), handed back in take order.
-- KEYS[1] outbound:gateways (zset, score = heartbeat deadline in epoch ms)
-- ARGV[1] now (epoch ms)   ARGV[2] key prefix   ARGV[3…] channel names
-- Returns the number of messages handed back.
-- The processing, intake and queue keys are derived, not declared (Bellhop does not run on
-- Cluster). At most `budget` intake elements move per call (a dead intake may hold tens of
-- thousands, a list it took whole any number): a process with more left stays in
-- outbound:gateways for the next call.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local moved = 0
local budget = 20000

-- The intake hash's numbers below `limit`, the lowest first, at most `budget` of them. A hash
-- that fits the budget is read (HKEYS) and sorted once per intake in a call, then taken from in
-- order as the lists between its runs are handed back; a larger one (a process holds at most some
-- 100,000) gives the budget's worth of numbers from its lowest, found without a sort (numbers
-- are given in runs from 1; filing leaves gaps, read as nothing), read again at each use.
local sorted = {}  -- intake -> {numbers = {{number, field}, ...}, next = index}
local function hash_numbers(intake, limit)
  local numbered = {}
  local cached = sorted[intake]
  if not cached then
    local all = redis.call('HKEYS', intake)
    if #all > budget then
      local low
      for _, field in ipairs(all) do
        local number = tonumber(field)
        if number and number < limit and (not low or number < low) then
          low = number
        end
      end
      if low then
        for number = low, math.min(low + budget, limit) - 1 do
          numbered[#numbered + 1] = {number, string.format('%.0f', number)}
        end
      end
      return numbered
    end
    local numbers = {}
    for _, field in ipairs(all) do
      numbers[#numbers + 1] = {tonumber(field) or 0, field}
    end
    table.sort(numbers, function(a, b) return a[1] < b[1] end)
    cached = {numbers = numbers, next = 1}
    sorted[intake] = cached
  end
  local numbers = cached.numbers
  while cached.next <= #numbers and numbers[cached.next][1] < limit and #numbered < budget do
    numbered[#numbered + 1] = numbers[cached.next]
    cached.next = cached.next + 1
  end
  return numbered
end

-- LPUSH: the queue's back, as RPOPLPUSH does; the oldest handed back goes out first.
local function hand_back_hash(intake, queue, numbered)
  for j = 1, #numbered, 1000 do
    local fields = {}
    for f = j, math.min(j + 999, #numbered) do
      fields[#fields + 1] = numbered[f][2]
    end
    local values = redis.call('HMGET', intake, unpack(fields))
    for v = 1, #fields do
      if values[v] then
        redis.call('LPUSH', queue, values[v])
        moved = moved + 1
      end
    end
    redis.call('HDEL', intake, unpack(fields))
  end
  budget = budget - #numbered
end

-- An intake list's elements not filed, from the oldest, at most the budget's worth of them;
-- each handed back has its bit set, so the process, were it alive after all, does not file
-- it. A list handed back to its end goes. Its length is the one taken (what an engine pushed
-- onto it since is no element of the queue).
local function hand_back_list(intake, queue, number, length)
  local list = intake .. ':' .. number
  local filed = list .. ':filed'
  local from = redis.call('BITPOS', filed, 0)  -- the first not filed
  local to = math.min(length, from + budget)   -- indexes from .. to - 1, 0 the oldest
  for at = from, to - 1, 1000 do
    local upto = math.min(at + 1000, to)
    local chunk = redis.call('LRANGE', list, -upto, -at - 1)  -- the newest first
    for j = #chunk, 1, -1 do
      local index = at + #chunk - j
      if redis.call('SETBIT', filed, index, 1) == 0 then
        redis.call('LPUSH', queue, chunk[j])
        moved = moved + 1
      end
    end
  end
  budget = budget - math.max(to - from, 1)
  if to >= length then
    redis.call('DEL', list, filed)
    redis.call('HDEL', intake .. ':lists', number)
  end
end

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
    local lists = intake .. ':lists'
    -- Take order: the hash's elements numbered below the oldest list's, then that list, and
    -- so on.
    while budget > 0 do
      local number, length  -- the oldest list: the lowest number
      local taken = redis.call('HGETALL', lists)
      for j = 1, #taken, 2 do
        if tonumber(taken[j]) and (not number or tonumber(taken[j]) < tonumber(number)) then
          number, length = taken[j], tonumber(taken[j + 1]) or 0
        end
      end
      local numbered = hash_numbers(intake, number and tonumber(number) or math.huge)
      if #numbered > 0 then
        hand_back_hash(intake, queue, numbered)
      elseif number then
        hand_back_list(intake, queue, number, length)
      elseif #taken > 0 then  -- no list under a number: nothing to hand back
        redis.call('DEL', lists)
      else
        break
      end
    end
    if redis.call('EXISTS', intake, lists) > 0 then
      done = false
    end
  end
  if done then
    redis.call('ZREM', KEYS[1], gateway)
  end
end
return moved
