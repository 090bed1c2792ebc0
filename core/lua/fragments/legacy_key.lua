-- Included (at build time, by cmake/embed_lua.cmake) by the scripts that honour a key from
-- before dedup and idempotency keys were scoped by property (docs/upgrading.md), so that a
-- retry just after an upgrade is still recognised. Such a key holds the first message's id; it
-- answers for a property only when that message's record belongs to the same property: an
-- unscoped key never lets one property's message stand for another's.
-- The record's key is derived, not declared (Bellhop does not run on Redis Cluster).

-- `first`, the value read from a legacy key (GET, or MGET for many), when it answers for this
-- property; else nil.
local function legacy_owned(first, message_prefix, property_id)
  if type(first) ~= 'string' then  -- absent, or not a string (not one Bellhop wrote)
    return nil
  end
  local owner = redis.pcall('HGET', message_prefix .. first, 'property_id')
  if type(owner) == 'string' and owner == property_id then
    return first
  end
  return nil
end

-- The first message's id under the legacy key, or nil when there is none for this property.
local function legacy_first(legacy_key, message_prefix, property_id)
  return legacy_owned(redis.pcall('GET', legacy_key), message_prefix, property_id)
end
