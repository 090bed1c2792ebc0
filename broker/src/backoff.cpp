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

backoff::duration backoff::next() {
  // Cap the exponent so the shift never overflows, then cap the delay itself.
  const auto exponent = std::min<std::uint32_t>(attempt_, 30);
  const auto uncapped = initial_.count() * (std::int64_t{1} << exponent);
  const auto ceiling = std::min<std::int64_t>(uncapped, max_.count());
  ++attempt_;
  const double half = static_cast<double>(ceiling) / 2.0;
  const double r = std::clamp(random_(), 0.0, 1.0);
  return duration(static_cast<std::int64_t>(half + half * r));
}

}  // namespace bellhop::broker
