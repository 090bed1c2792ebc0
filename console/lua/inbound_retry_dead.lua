-- Every inbound dead letter back on the queue, at once (POST /v1/admin/inbound/dead/retry,
-- docs/console.md): oldest first, each onto the head of inbound:messages as a new arrival, so
-- the engines take them after what already waits. The delivery counts were deleted when the
-- messages died (reap_consumer.lua): each one has its inbound.max_deliveries again.
-- KEYS[1] inbound:messages:dead   KEYS[2] inbound:messages
-- Returns the number of messages requeued.
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') do
  moved = moved + 1
end
return moved
