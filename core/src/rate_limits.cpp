#include "bellhop/core/rate_limits.hpp"

#include <algorithm>

namespace bellhop::gateway {

rate_limits::rate_limits(broker::broker& redis, const contract::key_space& keys,
                         const rate_limit_options& options)
    : limiter(redis, keys) {
  for (const auto& [name, p] : options.policies)
    policies.emplace(name, to_ratelimit_policy(name, p));
  auto find = [&](const std::string& name) -> const ratelimit::policy* {
    auto it = policies.find(name);
    return it == policies.end() ? nullptr : &it->second;
  };
  inbound_api = find(options.inbound_api);
  staff_replies = find(options.staff_replies);
  webchat_session = find(options.webchat_session);
  webchat_ip = find(options.webchat_ip);
  console_login_user = find(options.console_login_user);
  console_login_ip = find(options.console_login_ip);
}

void add_ratelimit_metrics(metrics_registry& metrics, const rate_limits& limits) {
  metrics.add_collector([&limits](std::string& out) {
    append_metric_header(out, "bellhop_ratelimit_decisions_total",
                         "Rate-limit decisions by policy and result (allowed: consumed; denied: "
                         "this policy refused; failed_open / failed_closed: Redis could not "
                         "decide and the policy's fail mode did).",
                         metric_type::counter);
    for (const auto& [policy, s] : limits.limiter.stats()) {
      for (const auto& [result, n] : {std::pair{"allowed", s.allowed},
                                      {"denied", s.denied},
                                      {"failed_open", s.failed_open},
                                      {"failed_closed", s.failed_closed}}) {
        append_metric_sample(out, "bellhop_ratelimit_decisions_total",
                             {{"policy", policy}, {"result", result}}, static_cast<double>(n));
      }
    }
    append_metric_header(out, "bellhop_ratelimit_script_errors_total",
                         "Rate-limit checks that Redis answered with an error.",
                         metric_type::counter);
    append_metric_sample(out, "bellhop_ratelimit_script_errors_total", {},
                         static_cast<double>(limits.limiter.script_errors()));
  });
}

std::int64_t ceil_seconds(std::int64_t ms, std::int64_t floor) {
  return std::max(floor, (std::max<std::int64_t>(ms, 0) + 999) / 1000);
}

}  // namespace bellhop::gateway
