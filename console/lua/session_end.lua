-- Sign-out (POST /v1/auth/logout): the session goes and its end is published, so open
-- WebSockets on it close at once (docs/console.md, "Revocation").
-- KEYS[1] console:session:<session_id>
-- ARGV[1] the session id   ARGV[2] the user key prefix ("<prefix>console:user:")
-- ARGV[3] the revocation channel ("<prefix>console:revoked")
-- Returns 1 (ended) or 0 (there was none).
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. user .. ':sessions', ARGV[1])
redis.call('PUBLISH', ARGV[3], cjson.encode({session = ARGV[1]}))
return 1
