-- Publishes one dashboard event of a property with the property's next seq.
-- KEYS[1] property:<id>:seq   KEYS[2] property:<id>:events (stream)
-- ARGV[1] pub/sub channel property:<id>:conversations   ARGV[2] history length (XADD MAXLEN ~)
-- ARGV[3] the event JSON after its opening brace: '"property_id":…,"event":…,"data":…,"ts":…}'
-- Returns the seq.
local seq = redis.call('INCR', KEYS[1])
-- The stream outliving its counter (a key deleted by hand) must not wedge the property:
-- continue after the stream's last entry.
-- Only a fresh counter (seq 1: the key was lost) can be behind its stream; checking just then
-- keeps XREVRANGE off the hot path.
local last = seq == 1 and redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1) or {}
if #last > 0 then
  local top = tonumber(string.match(last[1][1], '^(%d+)'))
  if top and top >= seq then
    seq = top + 1
    redis.call('SET', KEYS[1], seq)
  end
end
local event = '{"seq":' .. string.format('%d', seq) .. ',' .. ARGV[3]
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], string.format('%d-0', seq), 'event', event)
redis.call('PUBLISH', ARGV[1], event)
return seq
