-- A console sign-in (POST /v1/auth/login, docs/console.md): stores the session if its user
-- still exists and is enabled (a `disable` may have run while the password was checked).
-- KEYS[1] console:user:<name>   KEYS[2] console:user:<name>:sessions
-- KEYS[3] console:session:<session_id>
-- ARGV[1] user name   ARGV[2] session id   ARGV[3] CSRF token   ARGV[4] created_at (epoch ms)
-- ARGV[5] expires_at (epoch ms)   ARGV[6] TTL (s)   ARGV[7] the session key prefix
-- ("<prefix>console:session:")
-- Returns 1 (stored) or 0 (no such user, or disabled).
local user = redis.call('HMGET', KEYS[1], 'role', 'disabled')
if not user[1] or user[2] == '1' then return 0 end
-- Ids of sessions that expired by themselves go, so the set holds the live ones only.
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[7] .. id) == 0 then redis.call('SREM', KEYS[2], id) end
end
redis.call('HSET', KEYS[3], 'user', ARGV[1], 'csrf', ARGV[3], 'created_at', ARGV[4],
           'expires_at', ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[6])
redis.call('SADD', KEYS[2], ARGV[2])
-- The set lives as long as its newest session.
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('EXPIRE', KEYS[2], ARGV[6]) end
return 1
