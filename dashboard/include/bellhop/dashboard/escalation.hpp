#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <memory>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/property.hpp"

namespace bellhop::gateway {

// What escalation takes of the settings (docs/configuration.md).
struct escalation_options {
  std::vector<property> properties;  // properties; those without an escalation contact are skipped
  int history_max = 10000;           // inbound.history_max (the event it appends)
  int conversation_ttl_s = 2592000;  // realtime.conversation_ttl_s (lifetime of its cursor)
  std::chrono::milliseconds interval{1000};  // how often each property is looked at
};

// Alerts a property's escalation contact when a guest has waited for staff too long
// (docs/properties.md, "Escalation"): each interval, one dashboard/lua/escalate.lua call per
// property with a contact; the script finds the conversations due, queues one notification each
// (outbound:email / outbound:sms) and appends conversation.updated (change "escalated").
// Every process runs it; the script decides from the records, so none notifies twice.
// Runs on a strand of the executor and never blocks it; Redis errors are counted
// (bellhop_escalation_errors_total), logged at warn at most every 30 s, and retried next tick.
class escalation_sweeper {
 public:
  escalation_sweeper(boost::asio::any_io_executor ex, broker::broker& redis,
                     const contract::key_space& keys, escalation_options options,
                     metrics_registry& metrics);
  ~escalation_sweeper();  // stop()s
  escalation_sweeper(const escalation_sweeper&) = delete;
  escalation_sweeper& operator=(const escalation_sweeper&) = delete;

  // Starts ticking (nothing at all when no property has an escalation contact). Thread-safe.
  void start();
  // No tick starts after this. Thread-safe, never blocks, idempotent.
  void stop();

 private:
  class impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace bellhop::gateway
