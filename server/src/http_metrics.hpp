#pragma once

#include <string_view>

#include "bellhop/server/http_types.hpp"
#include "bellhop/core/metrics.hpp"

namespace bellhop::gateway {

// The bellhop_http_* metrics, registered once per server.
class http_metrics {
 public:
  explicit http_metrics(metrics_registry& registry);

  // `route` is a route pattern or "unmatched", never a raw path: label values stay bounded.
  void record_request(std::string_view route, http::verb method, http::status status,
                      double seconds);
  // For requests answered without being handled (malformed, too large): no latency sample.
  void count_request(std::string_view route, http::verb method, http::status status);

  gauge& connections_active;
  counter& connections_rejected;
  counter& client_connections_rejected;
  counter& read_timeouts;

 private:
  counter_family& requests_;
  histogram_family& duration_;
};

}  // namespace bellhop::gateway
