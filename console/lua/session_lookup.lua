-- A console session and its user in one round trip (server/staff_auth.hpp's session_lookup).
-- KEYS[1] console:session:<session_id>
-- ARGV[1] the user key prefix ("<prefix>console:user:")
-- Returns {user, csrf, expires_at, role, properties (JSON)}, or nil when the session is
-- unknown or expired, or its user is gone or disabled.
local s = redis.call('HMGET', KEYS[1], 'user', 'csrf', 'expires_at')
if not s[1] or not s[2] or not s[3] then return nil end
local u = redis.call('HMGET', ARGV[1] .. s[1], 'role', 'properties', 'disabled')
if not u[1] or u[3] == '1' then return nil end
return {s[1], s[2], s[3], u[1], u[2] or '[]'}
