#pragma once

#include <cstdint>
#include <functional>
#include <string>

// The seam between the dashboards' WebSocket (realtime/, which validates and authorizes a
// `reply` frame) and the outbound flow (which queues it): docs/architecture.md.

namespace bellhop::contract {

// A staff member's `reply` frame, validated and authorized; the gateway queues it.
struct reply_request {
  std::string subject;  // the token's sub
  std::string session_id;
  std::string property_id;
  std::string conversation_id;
  std::string text;
  std::string client_msg_id;
};
// The queued message's id, or an error for the client (code as in the HTTP API, e.g.
// "not_found", "unavailable").
struct reply_result {
  std::string id;
  std::string error_code;
  std::string error_message;
  std::int64_t retry_after_ms = 0;  // > 0: sent as `retry_after_ms` (e.g. with rate_limited)
};
using reply_callback = std::function<void(reply_result)>;
// Called on the session's strand; must call back exactly once (any thread).
using reply_queuer = std::function<void(reply_request, reply_callback)>;

}  // namespace bellhop::contract
