#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/core/property.hpp"

namespace bellhop::gateway {

// What the outbound flow reads of the settings (the dispatcher, the outbound API, staff
// replies); the app fills it from the config. Each field names its key
// (docs/configuration.md).
struct outbound_options {
  // The dispatcher
  int concurrency = 8;                // outbound.concurrency
  int max_attempts = 5;               // outbound.max_attempts
  int backoff_initial_ms = 1000;      // outbound.backoff_initial_ms
  int backoff_max_ms = 300000;        // outbound.backoff_max_ms
  int visibility_timeout_ms = 30000;  // outbound.visibility_timeout_ms

  // What the scripts write (the dispatcher, the outbound API, staff replies)
  int idempotency_ttl_s = 86400;     // outbound.idempotency_ttl_s (not of staff replies)
  int message_ttl_s = 604800;        // inbound.message_ttl_s
  int history_max = 10000;           // inbound.history_max
  int conversation_ttl_s = 2592000;  // realtime.conversation_ttl_s
  int recent_messages = 50;          // realtime.recent_messages

  // The outbound API
  std::string admin_token;               // auth.admin_token ("" = admin requests refused)
  std::size_t max_body_bytes = 1048576;  // http.max_body_bytes

  // The channels Bellhop sends on (the configured ones), each with its accounts (channels.
  // <name>.accounts, docs/properties.md): a message or a staff reply of a property without an
  // account on the channel is refused, and so is a message naming an account not its property's.
  std::map<std::string, std::vector<channel_account>> channels;

  // The properties (properties, or the implicit ones): bulk messages (priority 5 to 10) of a
  // property inside its quiet hours wait until they end (docs/outbound.md, "Quiet hours").
  std::vector<property> properties;
};

}  // namespace bellhop::gateway
