#pragma once
// What the limiter's tests share: a policy from its figures, where a fixed window's state is
// (docs/ratelimit.md), a deterministic generator.

#include <cstdint>
#include <string>
#include <utility>

#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::ratelimit::test_support {

inline policy make_policy(std::string name, algorithm a, std::int64_t limit, std::int64_t window_ms,
                          std::int64_t burst = 0, failure_mode fail = failure_mode::closed) {
  policy p;
  p.name = std::move(name);
  p.algorithm = a;
  p.limit = limit;
  p.window_ms = window_ms;
  p.burst = burst;
  p.fail = fail;
  return p;
}

// A fixed window's state is a hash per policy and window, ratelimit:<policy>@<window start>,
// with a field per subject (docs/redis-keys.md): the name of the one holding `now_ms`.
inline std::string fixed_window_hash(const std::string& policy, std::int64_t window_ms,
                                     std::int64_t now_ms) {
  return "ratelimit:" + policy + "@" + std::to_string(now_ms - now_ms % window_ms);
}

// gcra's state is a hash per policy and slice of time, ratelimit:<policy>@<slice start>/<limit>,
// a slice as long as the bucket takes to fill and at least 1 s (docs/ratelimit.md): the name of
// the one holding `now_ms`.
inline std::string gcra_hash(const std::string& policy, std::int64_t limit, std::int64_t window_ms,
                             std::int64_t burst, std::int64_t now_ms) {
  const auto b = burst > 0 ? burst : limit;
  const auto reach = (b * window_ms + limit - 1) / limit;
  const auto width = reach > 1000 ? reach : 1000;
  return "ratelimit:" + policy + "@" + std::to_string(now_ms - now_ms % width) + "/" +
         std::to_string(limit);
}

// A small deterministic generator, so the driven sequences are the same on every run.
struct lcg {
  std::uint64_t state;
  std::int64_t below(std::int64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::int64_t>((state >> 33) % static_cast<std::uint64_t>(n));
  }
};

}  // namespace bellhop::ratelimit::test_support
