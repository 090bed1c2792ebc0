#pragma once
// What the limiter's tests share: a policy from its figures, what a fixed-window key holds
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

// A fixed-window key's state is "<window start> <used>": what it has used.
inline std::string fixed_window_used(const std::string& state) {
  const auto space = state.find(' ');
  return space == std::string::npos ? "(state " + state + ")" : state.substr(space + 1);
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
