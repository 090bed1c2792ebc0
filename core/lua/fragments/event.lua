-- Included (at build time, by cmake/embed_lua.cmake) by the scripts that publish property
-- events: the one place a script writes a dashboard event (docs/realtime.md, "Events"),
--   {"seq":N,"property_id":…,"event":…,"data":…,"ts":…}
-- byte for byte as bellhop::contract::stored_event writes it in C++
-- (tests/core/event_lua_integration_test.cpp runs both on the same input).
--
-- append_event appends an event to a property's capped history under the property's next seq
-- and returns seq and the event JSON, or nil and the error when it could not (the history key
-- holds another type, say), having then left the counter as it was: Redis does not roll a
-- script back, so a caller undoes what it wrote before, or writes nothing before it. The caller
-- publishes the JSON returned, when its other writes are done.
--
-- The counter and the history's last id agree unless the counter was lost or restored from an
-- older copy. Lost (INCR gives 1) is checked up front; behind (the XADD is refused: ids only
-- grow) continues after the history's last seq. Either way the counter is set to the seq used.

-- A JSON string, escaped as RapidJSON's Writer escapes it (C++ writes every other string of an
-- event that way): short escapes for \b \t \n \f \r, \u00XX for other control characters,
-- \" and \\; every other byte as is. cjson.encode escapes all of those and '/' too, in C: when
-- it escaped nothing (property ids, event names and times never need it) its answer is the
-- one; the pattern is the slow way, for the rest (a pattern search costs more than the call).
-- Answers are kept for the call: a batch of ingest.lua repeats its property ids and names.
local JSON_ESCAPES = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\t'] = '\\t',
                      ['\n'] = '\\n', ['\f'] = '\\f', ['\r'] = '\\r'}
local json_strings = {}
local function json_escape(c)
  return JSON_ESCAPES[c] or string.format('\\u%04X', string.byte(c))
end
local function json_string(s)
  local quoted = json_strings[s]
  if quoted then
    return quoted
  end
  quoted = cjson.encode(s)
  if #quoted ~= #s + 2 then
    quoted = '"' .. string.gsub(s, '[%z\1-\31"\\]', json_escape) .. '"'
  end
  json_strings[s] = quoted
  return quoted
end

-- The event as stored and published. data is one serialized JSON object, written as is.
local function event_json(seq, property_id, event, data, ts)
  return '{"seq":' .. string.format('%d', seq) .. ',"property_id":' .. json_string(property_id) ..
         ',"event":' .. json_string(event) .. ',"data":' .. data .. ',"ts":' .. json_string(ts) ..
         '}'
end

-- The seq after the history's last entry, or nil when the history is empty or unreadable.
local function seq_after_history(stream_key)
  local last = redis.pcall('XREVRANGE', stream_key, '+', '-', 'COUNT', 1)
  if type(last) ~= 'table' or last.err or #last == 0 then
    return nil
  end
  local top = tonumber(string.match(last[1][1], '^(%d+)'))
  return top and top + 1
end

-- The history is trimmed (MAXLEN ~, whole stream nodes only) once every TRIM_EVERY events
-- rather than at each XADD: a trim on every XADD costs more than the XADD itself.
local TRIM_EVERY = 100

local function append_event(seq_key, stream_key, history_max, property_id, event, data, ts)
  local counted = redis.call('INCR', seq_key)
  local seq = counted
  if seq == 1 then
    local next_seq = seq_after_history(stream_key)
    if next_seq and next_seq > seq then
      seq = next_seq
      redis.call('SET', seq_key, seq)
    end
  end
  -- No event added: the counter goes back to where it was, so no seq is skipped.
  local function fail(err)
    if counted == 1 then
      redis.call('DEL', seq_key)
    else
      redis.call('SET', seq_key, counted - 1)
    end
    return nil, err
  end
  local function add()
    local json = event_json(seq, property_id, event, data, ts)
    local added = redis.pcall('XADD', stream_key, string.format('%d-0', seq), 'event', json)
    if type(added) == 'table' and added.err then
      return nil, added.err
    end
    if seq % TRIM_EVERY == 0 then
      redis.call('XTRIM', stream_key, 'MAXLEN', '~', history_max)
    end
    return json
  end
  local json, err = add()
  if not json then
    local next_seq = seq_after_history(stream_key)
    if not next_seq or next_seq <= seq then
      return fail(err)
    end
    seq = next_seq
    redis.call('SET', seq_key, seq)
    json, err = add()
    if not json then
      return fail(err)
    end
  end
  return seq, json
end
