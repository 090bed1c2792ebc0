#pragma once

#include <map>
#include <string>
#include <vector>

#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/core/property.hpp"

namespace bellhop::gateway {

// What the console takes of the settings; the app fills it from the config. Each field names
// its key (docs/configuration.md).
struct console_options {
  std::string public_url;     // public_url: https:// makes the session cookie Secure
  std::string jwt_secret;     // auth.jwt_secret (staff tokens are accepted beside sessions)
  std::string admin_token;    // auth.admin_token (the admin API's token, beside admin sessions)
  int session_ttl_s = 43200;  // console.session_ttl_s: how long a sign-in lasts
  std::vector<std::string> channels;  // the channels this gateway sends on (the admin page)
  std::vector<property> properties;   // properties (GET /v1/properties lists them)

  // The admin API (console/admin_api.hpp)
  // channels.<name>.accounts (docs/properties.md): each channel's accounts and their properties
  std::map<std::string, std::vector<channel_account>> accounts;
  int inbound_visibility_timeout_ms = 30000;  // inbound.visibility_timeout_ms (heartbeat age)
};

}  // namespace bellhop::gateway
