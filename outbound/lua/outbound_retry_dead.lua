-- Sends dead letters again: each one's message goes back onto outbound:<channel> with its
-- attempts reset (status queued). All of them, or the one whose message has ARGV[2] as id.
-- KEYS[1] dead list   KEYS[2] outbound:<channel>
-- ARGV[1] message key prefix ('message:' with the key prefix)   ARGV[2] id ('' = all)
-- Returns the number of messages requeued.
local moved = 0
local letters = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #letters, 1, -1 do  -- oldest first
  local letter = letters[i]
  local ok, decoded = pcall(cjson.decode, letter)
  local message = ok and type(decoded) == 'table' and decoded.message
  local id = type(message) == 'table' and message.id or nil
  if ARGV[2] == '' or id == ARGV[2] then
    redis.call('LREM', KEYS[1], 1, letter)
    local element
    if type(message) == 'table' then
      -- The message as it was written (cjson would turn [] into {}): Bellhop writes it first,
      -- and the last unescaped ',"reason":' is the letter's own key.
      element = string.match(letter, '^{"message":(.*),"reason":') or cjson.encode(message)
      -- Only a record that still exists: a partial one (no property) would make the intake
      -- refuse the message as another's.
      if type(id) == 'string' and redis.call('EXISTS', ARGV[1] .. id) == 1 then
        redis.call('HSET', ARGV[1] .. id, 'status', 'queued', 'attempts', 0)
      end
    elseif ok and type(decoded) == 'table' and type(decoded.element) == 'string' then
      element = decoded.element  -- an element that could not be read: as it was
    else
      element = letter
    end
    redis.call('LPUSH', KEYS[2], element)
    moved = moved + 1
  end
end
return moved
