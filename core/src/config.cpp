#include "bellhop/core/config.hpp"

namespace bellhop::gateway {

std::map<std::string, ratelimit_policy> default_ratelimit_policies() {
  // Sources and reasoning: docs/configuration.md, "Rate-limit policies".
  auto policy = [](std::string algorithm, std::int64_t limit, std::int64_t window_ms,
                   std::int64_t burst = 0) {
    return ratelimit_policy{std::move(algorithm), limit, window_ms, burst, "closed"};
  };
  constexpr std::int64_t minute = 60'000, hour = 60 * minute, day = 24 * hour;
  return {
      // WhatsApp Cloud API: 80 messages/s per business phone number (error 130429 beyond).
      {"whatsapp_business_number", policy("gcra", 80, 1000, 80)},
      // WhatsApp pair rate: about 1 message per 6 s to one user, a small burst (error 131056).
      {"whatsapp_recipient", policy("gcra", 1, 6000, 3)},
      // Twilio: 1 SMS/s per long-code sender (more is queued, then refused).
      {"twilio_sms_sender", policy("gcra", 1, 1000, 1)},
      // Twilio: 15 messages per 30 s to one recipient from one sender.
      {"twilio_sms_recipient", policy("sliding_window", 15, 30'000)},
      // Email per property: 20 per minute, 1,000 per hour, 10,000 per day.
      {"email_property_minute", policy("sliding_window", 20, minute)},
      {"email_property_hour", policy("fixed_window", 1000, hour)},
      {"email_property_day", policy("fixed_window", 10'000, day)},
      // SMS per property: 10 per minute, 500 per hour, 5,000 per day.
      {"sms_property_minute", policy("sliding_window", 10, minute)},
      {"sms_property_hour", policy("fixed_window", 500, hour)},
      {"sms_property_day", policy("fixed_window", 5000, day)},
      // Bellhop's own: a dashboard session's replies (a person typing; stops a stuck client).
      {"staff_reply", policy("gcra", 30, minute, 10)},
      // Web chat guests: a person typing (a burst of 10, then one message every 3 s)...
      {"webchat_session", policy("gcra", 20, minute, 10)},
      // ...and everyone behind one address (a hotel's guest Wi-Fi is one address).
      {"webchat_ip", policy("gcra", 120, minute, 60)},
  };
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

std::map<std::string, std::string> channel_properties(const config& cfg) {
  std::map<std::string, std::string> out;
  if (cfg.channels.whatsapp) out["whatsapp"] = cfg.channels.whatsapp->property_id;
  if (cfg.channels.twilio) out["sms"] = cfg.channels.twilio->property_id;
  if (cfg.channels.email) out["email"] = cfg.channels.email->property_id;
  if (cfg.channels.webchat) out["webchat"] = cfg.channels.webchat->property_id;
  return out;
}

}  // namespace bellhop::gateway
