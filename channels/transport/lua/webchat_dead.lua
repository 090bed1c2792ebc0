-- A frame of a web-chat outbox that Bellhop cannot read (poison): out of the outbox, onto the
-- web chat's dead letters with the reason (docs/webchat.md). Whoever finds it first files it.
-- KEYS[1] webchat:<guest>:outbox   KEYS[2] webchat:dead
-- ARGV[1] the reply's id (hash field)   ARGV[2] the frame as read   ARGV[3] the dead letter JSON
-- Returns 1, or 0 when the frame had changed or gone (another socket filed it).
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[3])
return 1
