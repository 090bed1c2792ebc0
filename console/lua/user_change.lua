-- bellhop user disable|enable|passwd (docs/console.md). `disable` and `passwd` end every session
-- of the user at once: their keys go and {"user":"<name>"} is published, so open WebSockets
-- close too.
-- KEYS[1] console:user:<name>   KEYS[2] console:user:<name>:sessions
-- ARGV[1] 'disable' | 'enable' | 'passwd'   ARGV[2] name   ARGV[3] now (epoch ms)
-- ARGV[4] the session key prefix ("<prefix>console:session:")
-- ARGV[5] the revocation channel ("<prefix>console:revoked")   ARGV[6] passwd: the new hash
-- Returns the number of sessions ended, or 'unknown' (no such user).
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if ARGV[1] == 'enable' then
  redis.call('HSET', KEYS[1], 'disabled', '0', 'changed_at', ARGV[3])
  return 0
end
if ARGV[1] == 'disable' then
  redis.call('HSET', KEYS[1], 'disabled', '1', 'changed_at', ARGV[3])
else
  redis.call('HSET', KEYS[1], 'password', ARGV[6], 'changed_at', ARGV[3])
end
local ended = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  ended = ended + redis.call('DEL', ARGV[4] .. id)
end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[5], cjson.encode({user = ARGV[2]}))
return ended
