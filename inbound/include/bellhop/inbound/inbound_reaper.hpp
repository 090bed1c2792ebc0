#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/inbound/options.hpp"

namespace bellhop::gateway {

// Returns the messages of dead AI-engine consumers to the inbound queue (docs/ai-engine.md).
//
// Every reaper_interval_ms, each bellhop process tries to take the lease
// inbound:messages:reaper; the holder reads the registry inbound:messages:consumers (consumers
// SADD their name with every heartbeat) and runs reap_consumer.lua for each name: if the
// consumer's heartbeat key is gone, its messages go back to the front of the queue, or to
// inbound:messages:dead after max_deliveries failed deliveries (then the message's status
// becomes "failed" and a message.status event is published), and the name leaves the registry.
// Every consumer_scan_interval_ms (and when it takes the lease) the holder also SCANs the
// keyspace for inbound:messages:processing:* lists of consumers missing from the registry and
// adds them: a safety net, so the per-tick cost does not grow with the number of keys.
// Correctness does not depend on the lease (the script re-checks the heartbeat and empties the
// list atomically, so two reapers never requeue a message twice); it only avoids double work.
//
// Gauges (queue depth, in flight, oldest age) are refreshed each tick in one pipelined round;
// in_flight only by the lease holder.
//
// Runs on a strand of the given executor and never blocks it. Redis errors are counted
// (bellhop_inbound_reaper_errors_total), logged at warn at most every 30 s, and retried next
// tick. The broker and the metrics registry must outlive the executor's pending handlers.
class inbound_reaper {
 public:
  inbound_reaper(boost::asio::any_io_executor ex, broker::broker& redis,
                 const contract::key_space& keys, const inbound_options& options,
                 metrics_registry& metrics);
  ~inbound_reaper();  // stop()s
  inbound_reaper(const inbound_reaper&) = delete;
  inbound_reaper& operator=(const inbound_reaper&) = delete;

  // Starts ticking (the first tick runs at once). Thread-safe.
  void start();
  // No tick starts after this; replies still in flight are ignored. Releases the lease if held
  // (best effort: otherwise it expires after 3 intervals). Thread-safe, never blocks, idempotent.
  void stop();

 private:
  class impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace bellhop::gateway
