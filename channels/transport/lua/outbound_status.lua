-- A provider's status callback for a message Bellhop sent: moves the message's status forward
-- (queued < sent < delivered < read; failed only from queued or sent, so a late "failed" never
-- undoes a delivery) and publishes message.status to the property's dashboards.
-- KEYS[1] the provider id key (outbound:<channel>:provider:<provider id>)
-- ARGV[1] new status   ARGV[2] key prefix   ARGV[3] time (RFC 3339)   ARGV[4] error code
-- ARGV[5] reason   ARGV[6] history cap   ARGV[7] provider message id
-- Returns {1, id, property_id} when the status moved, {0, id or false} when it did not (unknown
-- provider id, record expired, or not a step forward).
-- Keys derived from the record (message, property seq/events) are not declared: Bellhop does
-- not run on Redis Cluster.
--#include event.lua
local id = redis.call('GET', KEYS[1])
if not id then
  return {0, false}
end
local prefix = ARGV[2]
local message_key = prefix .. 'message:' .. id
local record = redis.call('HMGET', message_key, 'status', 'property_id', 'conversation_id')
if not record[2] then
  return {0, id}
end
local rank = {queued = 0, sent = 1, delivered = 2, read = 3}
local old, new = record[1] or 'queued', ARGV[1]
local forward
if new == 'failed' then
  forward = old == 'queued' or old == 'sent'
else
  forward = rank[new] ~= nil and (rank[old] or 99) < rank[new]
end
if not forward then
  return {0, id}
end
local fields = {'status', new, new .. '_at', ARGV[3]}
if new == 'failed' then
  fields[#fields + 1] = 'error_code'
  fields[#fields + 1] = ARGV[4]
  fields[#fields + 1] = 'reason'
  fields[#fields + 1] = ARGV[5]
end
redis.call('HSET', message_key, unpack(fields))
local data = {id = id, status = new, conversation_id = record[3] or cjson.null,
              provider_message_id = ARGV[7]}
if new == 'failed' then
  data.error_code = ARGV[4]
  data.reason = ARGV[5]
end
local pid = record[2]
local seq, event = append_event(prefix .. 'property:' .. pid .. ':seq',
                                prefix .. 'property:' .. pid .. ':events', ARGV[6], pid,
                                'message.status', cjson.encode(data), ARGV[3])
if seq then
  redis.call('PUBLISH', prefix .. 'property:' .. pid .. ':conversations', event)
end
return {1, id, pid}
