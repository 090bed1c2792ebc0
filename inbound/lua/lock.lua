-- A lease held by one process: KEYS[1] the lock key, ARGV[1] the holder's random token,
-- ARGV[2] "acquire" (take it or extend our own) or "release", ARGV[3] lease in ms (acquire).
-- Returns 1 when the caller holds (acquire) or held (release) the lock, else 0.
local holder = redis.call('GET', KEYS[1])
if ARGV[2] == 'release' then
  if holder == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
