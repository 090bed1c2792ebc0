-- Included (at build time, by gateway/embed_lua.cmake) by the scripts that publish property
-- events.
-- Appends an event to a property's capped history under the property's next seq and returns
-- seq and the event JSON ('{"seq":N,' .. rest). The XADD is the step that can fail (it needs
-- an id above the stream's last), so callers write nothing else before it.
local function append_event(seq_key, stream_key, history_max, rest)
  local seq = redis.call('INCR', seq_key)
  -- Only a fresh counter (seq 1: the key was lost) can be behind its stream; checking just
  -- then keeps XREVRANGE off the hot path.
  local last = seq == 1 and redis.call('XREVRANGE', stream_key, '+', '-', 'COUNT', 1) or {}
  if #last > 0 then
    local top = tonumber(string.match(last[1][1], '^(%d+)'))
    if top and top >= seq then
      seq = top + 1
      redis.call('SET', seq_key, seq)
    end
  end
  local event = '{"seq":' .. string.format('%d', seq) .. ',' .. rest
  redis.call('XADD', stream_key, 'MAXLEN', '~', history_max, string.format('%d-0', seq),
             'event', event)
  return seq, event
end
