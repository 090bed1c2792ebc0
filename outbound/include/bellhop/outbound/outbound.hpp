#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/channels/types.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/core/outbound_message.hpp"
#include "bellhop/outbound/options.hpp"
#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::gateway {

struct rate_limits;

// The outbound sender of one process: per channel, an intake that takes the elements of
// outbound:<channel> many at a time (into this process's intake hash) and files them in
// batches by priority, and a dispatcher that keeps up to outbound.concurrency sends in flight,
// taking the lowest-priority-number messages first, passing them through their rate limits (a
// limited message waits in outbound:<channel>:delayed until its retry-after), and ending each send
// as sent, retried with backoff, or dead. A heartbeat lets other processes hand this one's
// in-flight sends back to the queues if it dies, and this one does the same for them.
class outbound_service {
 public:
  outbound_service(boost::asio::any_io_executor ex, broker::broker& redis,
                   const contract::key_space& keys, const outbound_options& options,
                   rate_limits* limits, std::vector<outbound_channel> channels,
                   metrics_registry& metrics);
  ~outbound_service();  // stop()s
  outbound_service(const outbound_service&) = delete;
  outbound_service& operator=(const outbound_service&) = delete;

  void start();
  // No new send starts; sends in flight finish on their own (or are recovered later).
  void stop();
  const std::string& gateway_id() const;

 private:
  class impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace bellhop::gateway
