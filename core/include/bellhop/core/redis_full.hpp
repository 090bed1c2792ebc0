#pragma once

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/error.hpp"
#include "bellhop/core/services.hpp"

namespace bellhop::gateway {

// Whether a reply is Redis refusing a write because it reached maxmemory: every write path
// answers it with json_response.hpp's redis_full (HTTP) or a "redis_full" error frame.
inline bool is_redis_full(const broker::reply& r) {
  return r.is_error() && broker::is_out_of_memory(r.str());
}

// Whether new data (a guest message, a reply, a send) must be refused because Redis is nearly
// full (redis_memory::full): then it is counted (bellhop_redis_oom_total) and answered like a
// write Redis refused.
inline bool refuse_new_data(const redis_memory* memory, broker::broker& redis) {
  if (!memory || !memory->full()) return false;
  redis.note_out_of_memory();
  return true;
}

}  // namespace bellhop::gateway
