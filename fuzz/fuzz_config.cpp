// parse_config_text: the config file (docs/configuration.md), comments and trailing commas
// allowed. What loads is a valid configuration: the checks that load_config makes after every
// source hold, and every error names the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bellhop/gateway/config.hpp"
#include "bellhop/ratelimit/limiter.hpp"
#include "fuzz_check.hpp"

namespace gw = bellhop::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = gw::parse_config_text(text, "config fuzz.json");
  if (!cfg) {
    FUZZ_CHECK(cfg.error().starts_with("config fuzz.json"));
    return 0;
  }
  FUZZ_CHECK(gw::parse_listen(cfg->listen).has_value());
  FUZZ_CHECK(cfg->realtime.heartbeat_s < cfg->realtime.idle_timeout_s);
  FUZZ_CHECK(!cfg->public_url.ends_with('/'));
  for (const auto& [name, policy] : cfg->ratelimit.policies)
    FUZZ_CHECK(bellhop::ratelimit::validate(gw::to_ratelimit_policy(name, policy)).empty());
  for (const auto* name : {&cfg->ratelimit.inbound_api, &cfg->ratelimit.staff_replies})
    FUZZ_CHECK(name->empty() || cfg->ratelimit.policies.contains(*name));
  (void)gw::config_warnings(*cfg);
  (void)gw::webhook_warnings(*cfg);
  return 0;
}
