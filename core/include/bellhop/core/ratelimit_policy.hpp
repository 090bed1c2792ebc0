#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::gateway {

// One configured policy (ratelimit.policies.<name>).
struct ratelimit_policy {
  std::string algorithm;  // fixed_window | sliding_window | gcra
  std::int64_t limit = 0;
  std::int64_t window_ms = 0;
  std::int64_t burst = 0;       // gcra only; 0 = limit
  std::string fail = "closed";  // when Redis cannot decide: "open" (allow) or "closed" (refuse)
};

// The policies every config has unless it redefines them by name: the providers' published
// limits (docs/configuration.md gives each one's source) and Bellhop's own.
std::map<std::string, ratelimit_policy> default_ratelimit_policies();
// The limiter's form of a configured policy (`burst` kept for gcra only).
ratelimit::policy to_ratelimit_policy(const std::string& name, const ratelimit_policy& p);

}  // namespace bellhop::gateway
