-- Sets the status of a message:<id> record without creating one that expired or never existed.
-- KEYS[1] message:<id>   ARGV[1] status
-- Returns 1 if the record exists (and was updated), else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
return 1
