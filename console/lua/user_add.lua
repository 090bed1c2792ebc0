-- bellhop user add (docs/console.md): a new console account.
-- KEYS[1] console:users   KEYS[2] console:user:<name>
-- ARGV[1] name   ARGV[2] password (Argon2id string)   ARGV[3] role   ARGV[4] properties (JSON)
-- ARGV[5] now (epoch ms)
-- Returns 'ok', or 'exists' (nothing changed).
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('HSET', KEYS[2], 'password', ARGV[2], 'role', ARGV[3], 'properties', ARGV[4],
           'disabled', '0', 'created_at', ARGV[5], 'changed_at', ARGV[5])
redis.call('SADD', KEYS[1], ARGV[1])
return 'ok'
