#include "bellhop/core/ratelimit_policy.hpp"

#include "bellhop/channels/email.hpp"
#include "bellhop/channels/twilio.hpp"
#include "bellhop/channels/whatsapp.hpp"

namespace bellhop::gateway {

std::map<std::string, ratelimit_policy> default_ratelimit_policies() {
  // Sources and reasoning: docs/configuration.md, "Rate-limit policies".
  auto policy = [](std::string algorithm, std::int64_t limit, std::int64_t window_ms,
                   std::int64_t burst = 0) {
    return ratelimit_policy{std::move(algorithm), limit, window_ms, burst, "closed"};
  };
  constexpr std::int64_t minute = 60'000;
  std::map<std::string, ratelimit_policy> out{
      // Bellhop's own: a dashboard session's replies (a person typing; stops a stuck client).
      {"staff_reply", policy("gcra", 30, minute, 10)},
      // Web chat guests: a person typing (a burst of 10, then one message every 3 s)...
      {"webchat_session", policy("gcra", 20, minute, 10)},
      // ...and everyone behind one address (a hotel's guest Wi-Fi is one address).
      {"webchat_ip", policy("gcra", 120, minute, 60)},
      // Console sign-ins (docs/console.md): per user name, a password guesser gets 5 tries a
      // minute; per client address, 20 (a front desk's PCs share one address).
      {"console_login_user", policy("fixed_window", 5, minute)},
      {"console_login_ip", policy("fixed_window", 20, minute)},
  };
  // The providers' published limits, as each channel's adapter states them.
  auto add = [&](const auto& limits) {
    for (const channels::published_limit& l : limits) {
      out.emplace(std::string(l.name),
                  policy(std::string(l.algorithm), l.limit, l.window_ms, l.burst));
    }
  };
  add(channels::whatsapp::published_limits);
  add(channels::twilio::published_limits);
  add(channels::email::published_limits);
  return out;
}

ratelimit::policy to_ratelimit_policy(const std::string& name, const ratelimit_policy& p) {
  ratelimit::policy out;
  out.name = name;
  out.algorithm =
      ratelimit::parse_algorithm(p.algorithm).value_or(ratelimit::algorithm::fixed_window);
  out.limit = p.limit;
  out.window_ms = p.window_ms;
  out.burst = out.algorithm == ratelimit::algorithm::gcra ? p.burst : 0;
  out.fail = p.fail == "open" ? ratelimit::failure_mode::open : ratelimit::failure_mode::closed;
  return out;
}

}  // namespace bellhop::gateway
