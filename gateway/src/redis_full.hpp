#pragma once

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/error.hpp"

namespace bellhop::gateway {

// Whether a reply is Redis refusing a write because it reached maxmemory: every write path
// answers it with json_response.hpp's redis_full (HTTP) or a "redis_full" error frame.
inline bool is_redis_full(const broker::reply& r) {
  return r.is_error() && broker::is_out_of_memory(r.str());
}

}  // namespace bellhop::gateway
