#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/ratelimit_policy.hpp"
#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::gateway {

// What the rate limits take of the settings; the app fills it from the config. Each field
// names its key (docs/configuration.md); a name that is "" or not a policy means no limit.
struct rate_limit_options {
  std::map<std::string, ratelimit_policy> policies =
      default_ratelimit_policies();                 // ratelimit.policies
  std::string inbound_api;                          // ratelimit.inbound_api
  std::string staff_replies = "staff_reply";        // ratelimit.staff_replies
  std::string webchat_session = "webchat_session";  // ratelimit.webchat_session
  std::string webchat_ip = "webchat_ip";            // ratelimit.webchat_ip
  std::string console_login_user = "console_login_user";  // ratelimit.console_login_user
  std::string console_login_ip = "console_login_ip";      // ratelimit.console_login_ip
};

// The process's limiter and the configured policies, by name.
struct rate_limits {
  rate_limits(broker::broker& redis, const contract::key_space& keys,
              const rate_limit_options& options);

  ratelimit::limiter limiter;
  std::map<std::string, ratelimit::policy> policies;
  const ratelimit::policy* inbound_api = nullptr;      // per adapter key; nullptr: none
  const ratelimit::policy* staff_replies = nullptr;    // per dashboard session; nullptr: none
  const ratelimit::policy* webchat_session = nullptr;  // per web chat guest; nullptr: none
  const ratelimit::policy* webchat_ip = nullptr;       // per web chat client address; nullptr: none
  const ratelimit::policy* console_login_user = nullptr;  // console sign-ins per user name
  const ratelimit::policy* console_login_ip = nullptr;    // console sign-ins per client address
};

// bellhop_ratelimit_decisions_total{policy,result} and bellhop_ratelimit_script_errors_total.
void add_ratelimit_metrics(metrics_registry& metrics, const rate_limits& limits);

// Seconds, rounded up, of a duration in ms (at least `floor`).
std::int64_t ceil_seconds(std::int64_t ms, std::int64_t floor = 0);

}  // namespace bellhop::gateway
