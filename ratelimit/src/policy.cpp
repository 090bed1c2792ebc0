// The policies' pure functions, apart from the limiter and its Redis calls: the config loader
// (and its fuzz target) use them without the broker.
#include <cstdint>

#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::ratelimit {

std::string_view to_string(algorithm a) noexcept {
  switch (a) {
    case algorithm::fixed_window:
      return "fixed_window";
    case algorithm::sliding_window:
      return "sliding_window";
    case algorithm::gcra:
      return "gcra";
  }
  return "?";
}

std::optional<algorithm> parse_algorithm(std::string_view s) noexcept {
  for (auto a : {algorithm::fixed_window, algorithm::sliding_window, algorithm::gcra})
    if (s == to_string(a)) return a;
  return std::nullopt;
}

std::string validate(const policy& p) {
  // Bounds keep every figure of the script exact in a double (2^53) and in Redis integers.
  constexpr std::int64_t max_limit = 1'000'000'000, max_window = 366LL * 24 * 3600 * 1000;
  if (p.limit < 1 || p.limit > max_limit) return "limit must be 1 to 1000000000";
  if (p.window_ms < 1 || p.window_ms > max_window)
    return "window_ms must be 1 to 31622400000 (366 days)";
  if (p.burst < 0 || p.burst > max_limit) return "burst must be 0 (= limit) to 1000000000";
  if (p.burst != 0 && p.algorithm != algorithm::gcra) return "burst applies to gcra only";
  // gcra counts in 1/limit ms, where its bucket holds burst * window_ms (lua/fragments/gcra.lua).
  if (p.algorithm == algorithm::gcra &&
      (p.burst > 0 ? p.burst : p.limit) > (std::int64_t{1} << 52) / p.window_ms)
    return "gcra: burst (or limit when burst is 0) times window_ms must be at most 2^52";
  if (p.algorithm == algorithm::sliding_window && p.limit > 100'000)
    return "sliding_window keeps one entry per unit: limit must be at most 100000 (use gcra or "
           "fixed_window for more)";
  return {};
}

}  // namespace bellhop::ratelimit
