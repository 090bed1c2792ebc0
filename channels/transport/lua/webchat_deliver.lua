-- A reply to a web-chat guest: kept in their outbox until their browser confirms it (they may be
-- away: it waits channels.webchat.hold_s, renewed by each reply), and published to the sockets
-- they have open now, on whichever Bellhop process.
-- KEYS[1] webchat:<guest>:outbox (hash: message id -> frame)
-- ARGV[1] message id   ARGV[2] the frame (JSON)   ARGV[3] hold (s)   ARGV[4] pub/sub channel
-- Returns the number of processes listening (0: it waits for the guest to come back).
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('PUBLISH', ARGV[4], ARGV[2])
