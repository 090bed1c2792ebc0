#include "bellhop/broker/backoff.hpp"

#include <algorithm>
#include <random>

namespace bellhop::broker {

backoff::backoff(duration initial, duration max, random_source random)
    : initial_(initial), max_(std::max(initial, max)), random_(std::move(random)) {
  if (!random_) {
    random_ = [engine = std::minstd_rand(std::random_device{}())]() mutable {
      return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
    };
  }
}

std::chrono::milliseconds backoff_delay(std::chrono::milliseconds initial,
                                        std::chrono::milliseconds max, std::uint32_t n,
                                        double random) {
  // Doubled until it reaches the cap: no shift that could overflow, whatever n is.
  std::int64_t ceiling = std::min(initial.count(), max.count());
  for (std::uint32_t i = 0; i < n && ceiling > 0 && ceiling < max.count(); ++i) {
    ceiling = std::min(ceiling * 2, max.count());
  }
  const double half = static_cast<double>(ceiling) / 2.0;
  const double r = std::clamp(random, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(half + half * r));
}

backoff::duration backoff::next() {
  return backoff_delay(initial_, max_, attempt_++, random_());
}

}  // namespace bellhop::broker
