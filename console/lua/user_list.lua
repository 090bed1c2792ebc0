-- bellhop user list (docs/console.md): every account without its password hash.
-- KEYS[1] console:users   ARGV[1] the user key prefix ("<prefix>console:user:")
-- Returns {name, role, properties (JSON), disabled, created_at, ...}, sorted by name; names
-- whose hash is gone are skipped.
local names = redis.call('SMEMBERS', KEYS[1])
table.sort(names)
local out = {}
for _, name in ipairs(names) do
  local u = redis.call('HMGET', ARGV[1] .. name, 'role', 'properties', 'disabled', 'created_at')
  if u[1] then
    out[#out + 1] = name
    out[#out + 1] = u[1]
    out[#out + 1] = u[2] or '[]'
    out[#out + 1] = u[3] or '0'
    out[#out + 1] = u[4] or ''
  end
end
return out
