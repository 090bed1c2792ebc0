#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bellhop::contract {

// A dashboard event of a property (docs/realtime.md, "Events"): what happened, to which
// property, when. Its bytes are written in exactly one place per language: here for C++ and
// core/lua/fragments/event.lua for the Redis scripts, which append an event to the property's
// history and publish it (tests/core/event_lua_integration_test.cpp holds the two to the same
// bytes).
struct event_envelope {
  std::string_view property_id;
  std::string_view event;  // "message.created", "message.status", "typing", "presence"
  std::string_view data;   // one serialized JSON object, written as is
  std::string_view ts;     // RFC 3339
};

// As an event is stored in property:<id>:events and published on the property's channel:
// {"seq":N,"property_id":…,"event":…,"data":…,"ts":…}. Strings are escaped as RapidJSON's
// Writer escapes them.
std::string stored_event(std::uint64_t seq, const event_envelope& e);

// As a dashboard receives it: {"type":"event","seq":N,"property_id":…,"event":…,"data":…,
// "ts":…}; ephemeral events (typing, presence) have no seq.
std::string event_frame(const event_envelope& e, std::optional<std::uint64_t> seq);

struct stored_event_view {
  std::uint64_t seq = 0;
  event_envelope envelope;  // views into `text`
  std::string_view text;    // the whole event as read
};

// Reads text from Redis that claims to be a stored event, strictly in the layout stored_event
// writes: the members in that order, seq a whole number, property_id, event and ts strings
// that need no escaping (Bellhop never writes one that does), data from '{' to '}'. The data's
// inside is not parsed: it goes to dashboards as written. nullopt for anything else.
std::optional<stored_event_view> parse_stored_event(std::string_view text);
// The view points into `text`: a temporary string would leave it dangling.
std::optional<stored_event_view> parse_stored_event(std::string&& text) = delete;

// event_frame(v.envelope, v.seq) for an event parse_stored_event read, in one copy: what it
// accepts is exactly what stored_event writes (no escapes to redo, seq without leading zeros),
// so the frame is the text with "type" in front. The hub's path for every event.
std::string event_frame(const stored_event_view& v);

}  // namespace bellhop::contract
