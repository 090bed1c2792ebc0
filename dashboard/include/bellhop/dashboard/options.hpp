#pragma once

#include <string>

namespace bellhop::gateway {

// What the dashboards' REST reads take of the settings; the app fills it from the config. Each
// field names its key (docs/configuration.md).
struct dashboard_options {
  std::string jwt_secret;            // auth.jwt_secret (staff tokens; "" = none is valid)
  int conversation_ttl_s = 2592000;  // realtime.conversation_ttl_s (older ones are not listed)
  int recent_messages = 50;          // realtime.recent_messages (most messages returned)
  int history_max = 10000;           // inbound.history_max (events kept per property)
};

}  // namespace bellhop::gateway
