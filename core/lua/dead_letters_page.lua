-- The newest dead letters of a dead list, bounded (GET /v1/admin/queues/{channel}/dead and
-- GET /v1/admin/inbound/dead, docs/console.md): an element is returned whole up to ARGV[2]
-- bytes while the answer holds less than ARGV[3] bytes; any other element only as its first
-- ARGV[4] bytes, with its message id when the letter starts with one.
-- KEYS[1] the dead list
-- ARGV[1] how many (the newest first)   ARGV[2] largest element returned whole
-- ARGV[3] most bytes of whole elements in the answer   ARGV[4] bytes of a cut element
-- Returns {{1, element} | {0, first bytes, id or false}, …}, newest first.
local whole_max, total_max, cut = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out, total = {}, 0
for _, element in ipairs(redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  if #element <= whole_max and total + #element <= total_max then
    total = total + #element
    out[#out + 1] = {1, element}
  else
    local id = string.match(element, '^{"message":{"id":"([^"\\]*)"') or
               string.match(element, '^{"id":"([^"\\]*)"') or false
    out[#out + 1] = {0, string.sub(element, 1, cut), id}
  end
end
return out
