-- Included (at build time, by cmake/embed_lua.cmake) by the scripts that change who answers a
-- conversation or what staff have read (docs/properties.md, "Conversation state"):
-- dashboard/lua/conversation_change.lua (REST and WebSocket) and outbound/lua/outbound_accept.lua
-- (an engine's handoff through Redis). Needs event.lua included before it.
--
-- change_conversation applies one change to conversation:<cid> and appends its
-- conversation.updated event (seq, history); the caller publishes the event JSON returned.
--   change: 'handoff' (mode human), 'release' (mode ai), 'read' (unread 0), 'escalated'
--   k: {record = conversation:<cid>, unread = property:<pid>:unread, seq = property:<pid>:seq,
--       events = property:<pid>:events, escalation = property:<pid>:escalation}
-- The guest's wait for staff (escalation): a handoff of a conversation with unread messages
-- starts it (unless one is running), read and release end it and allow the next escalation,
-- escalated ends it and records escalated_at (no new wait starts until staff read or answer).
--   a: {cid, property_id, change, by, reason, confidence ('' none), assignee, now_ms, ts
--       (RFC 3339), history_max}
-- Returns seq, event JSON and the data JSON (the conversation's state), or nil and 'not_found'
-- when the record is missing or another property's, or nil and Redis's error when the event
-- could not be appended (then the record was not changed).
local function json_or_null(s)
  if not s or s == '' then
    return 'null'
  end
  return json_string(s)
end
local function number_or_null(s)
  local n = tonumber(s)
  if not n then
    return 'null'
  end
  return string.format('%d', n)
end

-- The event's data, from the record as it is after the change.
local function conversation_data(record, cid, change, by, reason, confidence)
  local mode = record[3] == 'human' and 'human' or 'ai'
  local parts = {'{"conversation_id":', json_string(cid), ',"property_id":', json_string(record[1]),
                 ',"channel":', json_or_null(record[2]), ',"guest":', json_or_null(record[4]),
                 ',"mode":', json_string(mode), ',"assignee":', json_or_null(record[5]),
                 ',"reason":', json_or_null(reason)}
  if confidence and confidence ~= '' then
    parts[#parts + 1] = ',"confidence":' .. confidence
  end
  parts[#parts + 1] = ',"unread":' .. string.format('%d', tonumber(record[6]) or 0)
  parts[#parts + 1] = ',"last_inbound_at":' .. number_or_null(record[7])
  parts[#parts + 1] = ',"read_at":' .. number_or_null(record[8])
  parts[#parts + 1] = ',"change":' .. json_string(change) .. ',"by":' .. json_or_null(by) .. '}'
  return table.concat(parts)
end

local STATE_FIELDS = {'property_id', 'channel', 'mode', 'guest', 'assignee', 'unread',
                      'last_inbound_at', 'read_at', 'mode_reason', 'mode_confidence'}

local function change_conversation(k, a)
  local before = redis.call('HMGET', k.record, unpack(STATE_FIELDS))
  if before[1] ~= a.property_id then
    return nil, 'not_found'
  end
  local reason, confidence = a.reason, a.confidence
  local after = before  -- the same table: `before` is read below only where nothing changed
  local fields, drop = {}, {}
  if a.change == 'handoff' then
    fields = {'mode', 'human', 'assignee', a.assignee, 'mode_reason', a.reason,
              'mode_changed_at', a.now_ms}
    after[3], after[5] = 'human', a.assignee
  elseif a.change == 'release' then
    fields = {'mode', 'ai', 'assignee', '', 'mode_reason', a.reason, 'mode_changed_at', a.now_ms}
    after[3], after[5] = 'ai', ''
    confidence = ''
  elseif a.change == 'read' then
    fields = {'unread', '0', 'read_at', a.now_ms}
    after[6], after[8] = '0', a.now_ms
    reason, confidence = before[9], before[10]
  else  -- escalated: the state as it is
    reason, confidence = before[9], before[10]
  end
  if a.change == 'handoff' and confidence ~= '' then
    fields[#fields + 1] = 'mode_confidence'
    fields[#fields + 1] = confidence
  elseif a.change == 'handoff' or a.change == 'release' then
    drop[#drop + 1] = 'mode_confidence'
  end
  local data = conversation_data(after, a.cid, a.change, a.by, reason, confidence)
  -- The event first: when it cannot be appended, nothing has changed.
  local seq, event = append_event(k.seq, k.events, a.history_max, a.property_id,
                                  'conversation.updated', data, a.ts)
  if not seq then
    return nil, event
  end
  if #fields > 0 then
    redis.call('HSET', k.record, unpack(fields))
  end
  if #drop > 0 then
    redis.call('HDEL', k.record, unpack(drop))
  end
  if a.change == 'read' then
    redis.call('HDEL', k.unread, a.cid)
  end
  if a.change == 'release' then
    redis.call('DEL', k.record .. ':held')  -- the AI answers again: its held replies are moot
  end
  if a.change == 'read' or a.change == 'release' then
    redis.call('ZREM', k.escalation, a.cid)
    redis.call('HDEL', k.record, 'escalated_at')
  elseif a.change == 'escalated' then
    redis.call('ZREM', k.escalation, a.cid)
    redis.call('HSET', k.record, 'escalated_at', a.now_ms)
  elseif a.change == 'handoff' and (tonumber(after[6]) or 0) > 0 then
    redis.call('ZADD', k.escalation, 'NX', a.now_ms, a.cid)
  end
  return seq, event, data
end
