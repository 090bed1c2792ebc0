#pragma once
// What the limiter's tests share: a policy from its figures, and what a fixed-window key
// holds (docs/ratelimit.md).

#include <cstdint>
#include <string>
#include <utility>

#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::ratelimit::test_support {

inline policy make_policy(std::string name, algorithm a, std::int64_t limit,
                          std::int64_t window_ms, std::int64_t burst = 0,
                          failure_mode fail = failure_mode::closed) {
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

}  // namespace bellhop::ratelimit::test_support
