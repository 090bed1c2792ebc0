#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/property.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/dashboard/options.hpp"

namespace bellhop::gateway {

// Escalation (docs/properties.md, "Escalation"): once a second, for each property with an
// escalation contact, dashboard/lua/escalate.lua notifies the contact of every conversation with
// staff whose guest has waited unread and unanswered longer than escalation.after_s, once.
// Every Bellhop process may run one: the script takes each conversation off the waiting set as
// it escalates it, so two never notify twice. Metrics: bellhop_escalations_total and
// bellhop_escalation_errors_total (a failed pass also logs a warning, at most every 30 s).
// `svc`, `keys` and `metrics` must outlive it.
class escalator {
 public:
  escalator(boost::asio::any_io_executor ex, const services& svc, const contract::key_space& keys,
            const dashboard_options& options, std::vector<property> properties,
            metrics_registry& metrics);
  ~escalator();
  escalator(const escalator&) = delete;
  escalator& operator=(const escalator&) = delete;

  void start();
  void stop();
  // One pass over the properties as of `now`; `done` gets the number of conversations
  // escalated (-1 when Redis did not answer for some property). Tests call it directly.
  void tick(std::chrono::system_clock::time_point now, std::function<void(int)> done);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace bellhop::gateway
