#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace bellhop::broker {

// Exponential backoff with "equal jitter": retry n (from 0) waits between d/2 and d, where
// d = min(max, initial * 2^n); `random` in [0, 1) picks where. The one backoff formula: Redis
// reconnects, the embedded Redis' restarts and the outbound dispatcher's retries use it.
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds initial,
                                        std::chrono::milliseconds max, std::uint32_t n,
                                        double random);

// backoff_delay with the attempt counted here. The random source is injected so tests are
// deterministic.
class backoff {
 public:
  using duration = std::chrono::milliseconds;
  // Returns a uniformly distributed number in [0, 1).
  using random_source = std::function<double()>;

  backoff(duration initial, duration max, random_source random = {});

  duration next();  // the delay before the next attempt; advances the attempt counter
  void reset() noexcept { attempt_ = 0; }
  std::uint32_t attempt() const noexcept { return attempt_; }

 private:
  duration initial_;
  duration max_;
  random_source random_;
  std::uint32_t attempt_ = 0;
};

}  // namespace bellhop::broker
