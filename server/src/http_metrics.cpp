#include "http_metrics.hpp"

#include <charconv>

namespace bellhop::gateway {

http_metrics::http_metrics(metrics_registry& registry)
    : connections_active(registry
                             .add_gauge("bellhop_http_connections_active",
                                        "Open HTTP connections, upgraded WebSockets included.")
                             .labels({})),
      connections_rejected(
          registry
              .add_counter("bellhop_http_connections_rejected_total",
                           "HTTP connections answered 503 because max_connections was reached.")
              .labels({})),
      client_connections_rejected(
          registry
              .add_counter("bellhop_http_client_connections_rejected_total",
                           "HTTP connections answered 429 because their client already had "
                           "http.max_connections_per_ip open.")
              .labels({})),
      read_timeouts(registry
                        .add_counter("bellhop_http_read_timeouts_total",
                                     "HTTP connections closed because a request was not "
                                     "received within read_timeout.")
                        .labels({})),
      requests_(registry.add_counter("bellhop_http_requests_total", "HTTP requests answered.",
                                     {"route", "method", "status"})),
      duration_(registry.add_histogram(
          "bellhop_http_request_duration_seconds",
          "Time from a request being read to its response being ready, by route.", {"route"},
          metrics_registry::latency_buckets())) {}

void http_metrics::record_request(std::string_view route, http::verb method, http::status status,
                                  double seconds) {
  count_request(route, method, status);
  duration_.labels({route}).observe(seconds);
}

void http_metrics::count_request(std::string_view route, http::verb method, http::status status) {
  // Unknown methods collapse into one label value.
  const std::string_view method_label = method == http::verb::unknown
                                            ? std::string_view("OTHER")
                                            : std::string_view(http::to_string(method));
  char status_buf[8];
  const auto r =
      std::to_chars(status_buf, status_buf + sizeof status_buf, static_cast<unsigned>(status));
  const std::string_view status_label(status_buf, static_cast<std::size_t>(r.ptr - status_buf));
  requests_.labels({route, method_label, status_label}).inc();
}

}  // namespace bellhop::gateway
