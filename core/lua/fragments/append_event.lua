-- Included (at build time, by cmake/embed_lua.cmake) by the scripts that publish property
-- events.
-- Appends an event to a property's capped history under the property's next seq and returns
-- seq and the event JSON ('{"seq":N,' .. rest .. body .. tail; body and tail are optional, so
-- a caller holding the event's data separately need not join it first), or nil and the error
-- when it could not (the
-- history key holds another type, say), having then left the counter as it was: Redis does
-- not roll a script back, so a caller undoes what it wrote before, or writes nothing before it.
--
-- The counter and the history's last id agree unless the counter was lost or restored from an
-- older copy. Lost (INCR gives 1) is checked up front; behind (the XADD is refused: ids only
-- grow) continues after the history's last seq. Either way the counter is set to the seq used.

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

local function append_event(seq_key, stream_key, history_max, rest, body, tail)
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
    local event = '{"seq":' .. string.format('%d', seq) .. ',' .. rest .. (body or '') ..
                  (tail or '')
    local added = redis.pcall('XADD', stream_key, string.format('%d-0', seq), 'event', event)
    if type(added) == 'table' and added.err then
      return nil, added.err
    end
    if seq % TRIM_EVERY == 0 then
      redis.call('XTRIM', stream_key, 'MAXLEN', '~', history_max)
    end
    return event
  end
  local event, err = add()
  if not event then
    local next_seq = seq_after_history(stream_key)
    if not next_seq or next_seq <= seq then
      return fail(err)
    end
    seq = next_seq
    redis.call('SET', seq_key, seq)
    event, err = add()
    if not event then
      return fail(err)
    end
  end
  return seq, event
end
