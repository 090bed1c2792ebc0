-- Who is watching a property's dashboard now (GET /v1/properties/{id}/presence).
-- KEYS[1] property:<pid>:presence (zset: session id -> expiry, epoch ms)
-- ARGV[1] now (epoch ms)   ARGV[2] the session key prefix ("<prefix>session:")
-- Drops expired entries (sessions of a crashed process), then returns
-- {session_id, sub, connected_at, ...} for each live session whose record still exists.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, 499)) do
  local fields = redis.call('HMGET', ARGV[2] .. id, 'sub', 'connected_at')
  if fields[1] then
    out[#out + 1] = id
    out[#out + 1] = fields[1]
    out[#out + 1] = fields[2] or ''
  end
end
return out
