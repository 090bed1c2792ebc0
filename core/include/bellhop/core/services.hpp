#pragma once

#include <memory>

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/embedded_redis.hpp"
#include "bellhop/core/rate_limits.hpp"
#include "bellhop/core/redis_memory.hpp"

namespace bellhop::gateway {

// What request handlers need, filled in as startup proceeds: the port is bound before Redis is
// started (a port in use fails fast), so early requests find no broker yet and answer 503.
// Set before the io_context runs; read-only afterwards.
struct services {
  std::unique_ptr<broker::embedded_redis> embedded;
  std::unique_ptr<broker::broker> redis;
  std::unique_ptr<rate_limits> limits;  // set with `redis`
  std::shared_ptr<redis_memory> memory;  // set with `redis`
};

}  // namespace bellhop::gateway
