#pragma once

#include <cstdint>
#include <functional>
#include <string>

// The seam between the entry points that change a conversation's state (the dashboards'
// WebSocket in realtime/, the REST routes) and the module that writes it (dashboard/):
// docs/properties.md, "Conversation state".

namespace bellhop::contract {

// One change, validated and authorized by the entry point.
struct conversation_change {
  std::string property_id;
  std::string conversation_id;
  std::string change;      // "handoff", "release" or "read"
  std::string by;          // the staff member's sub, or the adapter key's name
  std::string reason;      // "" none
  std::string confidence;  // a JSON number from 0 to 1, "" none
  std::string assignee;    // handoff: the staff member it goes to, "" none
};
// The conversation's state after the change (the data of its conversation.updated event, one
// JSON object) and the event's seq; or an error for the client (code as in the HTTP API:
// "not_found", "unavailable", "redis_full").
struct conversation_change_result {
  std::uint64_t seq = 0;
  std::string state_json;
  std::string error_code;
  std::string error_message;
};
using conversation_change_callback = std::function<void(conversation_change_result)>;
// Must call back exactly once (any thread).
using conversation_changer = std::function<void(conversation_change, conversation_change_callback)>;

}  // namespace bellhop::contract
