-- Escalation (docs/properties.md, "Escalation"): one property's conversations whose guest has
-- waited, unread and unanswered, for the property's escalation time while staff have the
-- conversation (mode `human`). Each one found is marked (`escalated_at`), its notification
-- queued to the property's escalation contact (email and/or SMS, as an outbound message any
-- engine could have queued), and a `conversation.updated` event (change `escalated`) appended
-- and published. Nothing more for it until staff read or answer it (both clear `escalated_at`).
--
-- Every process runs this each second for each property with an escalation contact; it is
-- atomic and decides from the record alone, so two processes never notify twice.
--
-- Which conversations: those whose last activity (the index score: the last guest message or
-- staff reply) lies between the cursor (where the previous call stopped) and now minus the
-- escalation time. A conversation answered since has a newer score and is looked at again only
-- after its next guest message has waited as long.
--
-- KEYS[1] property:<pid>:conversation_index   KEYS[2] property:<pid>:escalation_cursor
-- KEYS[3] property:<pid>:seq                  KEYS[4] property:<pid>:events
-- KEYS[5] outbound:email                      KEYS[6] outbound:sms
-- ARGV[1] property id         ARGV[2] now (epoch ms)        ARGV[3] escalation time (ms)
-- ARGV[4] email contact ('' = none)                         ARGV[5] SMS contact ('' = none)
-- ARGV[6] history length cap  ARGV[7] prefix of conversation keys ('conversation:', prefixed)
-- ARGV[8] now (RFC 3339)      ARGV[9] most conversations looked at per call
-- ARGV[10] property name      ARGV[11] pub/sub channel      ARGV[12] cursor lifetime (s)
-- Returns {looked at, then the id of each conversation escalated}.
--#include event.lua
local pid, now, after = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local upto = now - after
-- The first call (no cursor yet) looks back a day: a guest already waiting is not forgotten.
local cursor = tonumber(redis.call('GET', KEYS[2]) or '') or upto - 86400000
if cursor >= upto then
  return {0}
end
local limit = tonumber(ARGV[9])
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', cursor),
                         string.format('%d', upto), 'WITHSCORES', 'LIMIT', 0, limit)
local count = #found / 2
-- Where the next call starts. A full batch may end inside a run of equal scores: the next call
-- looks at that score again (what was escalated is not escalated twice).
local next_cursor = upto
if count == limit then
  local first, last = tonumber(found[2]), tonumber(found[#found])
  next_cursor = first == last and last or last - 1
end
redis.call('SET', KEYS[2], string.format('%d', next_cursor), 'EX', ARGV[12])

local function number(v)
  return tonumber(v) or 0
end

-- At most 200 bytes of the guest's text, cut on a UTF-8 character boundary.
local function excerpt(text)
  if type(text) ~= 'string' then
    return ''
  end
  if #text <= 200 then
    return text
  end
  local cut = 200
  while cut > 0 and string.byte(text, cut + 1) >= 0x80 and string.byte(text, cut + 1) < 0xC0 do
    cut = cut - 1
  end
  return string.sub(text, 1, cut) .. '…'
end

local escalated = {count}
for i = 1, #found, 2 do
  local cid = found[i]
  local key = ARGV[7] .. cid
  local r = redis.call('HMGET', key, 'property_id', 'mode', 'last_inbound_at', 'read_at',
                       'escalated_at', 'channel', 'guest', 'guest_name', 'assignee', 'unread')
  local last = number(r[3])
  if r[1] == pid and r[2] == 'human' and last > 0 and last <= upto and number(r[4]) < last and
      number(r[5]) == 0 then
    -- Unanswered: the newest message is the guest's (a staff reply would be newer).
    local ok, newest = pcall(cjson.decode, redis.call('LINDEX', key .. ':messages', 0) or '')
    if ok and type(newest) == 'table' and newest.direction == 'inbound' then
      redis.call('HSET', key, 'escalated_at', string.format('%d', now))
      local waited_s = math.floor((now - last) / 1000)
      -- The guest's name is the guest's own text: no control characters into a mail header.
      local guest = (type(r[8]) == 'string' and r[8] ~= '') and r[8] or r[7] or 'a guest'
      guest = string.gsub(guest, '%c', ' ')
      local text = string.format('%s has waited %d min for staff on %s at %s: "%s" (conversation %s)',
                                 guest, math.floor(waited_s / 60), r[6] or '?', ARGV[10],
                                 excerpt(newest.text), cid)
      local notified = {}
      local function notify(channel, list_key, to, extras)
        local message = {property_id = pid, channel = channel, to = to, text = text, priority = 1,
                         source = 'staff',
                         idempotency_key = 'escalation:' .. cid .. ':' .. string.format('%d', last)}
        if extras then
          message.extras = extras
        end
        redis.call('LPUSH', list_key, cjson.encode(message))
        notified[#notified + 1] = json_string(channel)
      end
      if ARGV[4] ~= '' then
        notify('email', KEYS[5], ARGV[4], {subject = 'Guest waiting for staff: ' .. guest})
      end
      if ARGV[5] ~= '' then
        notify('sms', KEYS[6], ARGV[5], nil)
      end
      local data = '{"conversation_id":' .. json_string(cid) .. ',"property_id":' ..
                   json_string(pid) .. ',"channel":' .. json_string(r[6] or '') .. ',"guest":' ..
                   json_string(r[7] or '') .. ',"mode":"human","assignee":' ..
                   json_string(r[9] or '') .. ',"unread":' .. string.format('%d', number(r[10])) ..
                   ',"last_inbound_at":' .. string.format('%d', last) .. ',"read_at":' ..
                   string.format('%d', number(r[4])) .. ',"change":"escalated","by":"bellhop"' ..
                   ',"escalation":{"waited_s":' .. string.format('%d', waited_s) ..
                   ',"notified":[' .. table.concat(notified, ',') .. ']}}'
      local seq, event = append_event(KEYS[3], KEYS[4], ARGV[6], pid, 'conversation.updated',
                                      data, ARGV[8])
      if seq then
        redis.call('PUBLISH', ARGV[11], event)
      end
      escalated[#escalated + 1] = cid
    end
  end
end
return escalated
