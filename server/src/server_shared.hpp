#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>

#include "bellhop/server/http_server.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/connection_limits.hpp"
#include "connection_tracker.hpp"
#include "http_metrics.hpp"

namespace bellhop::gateway {

// What the listener and every connection of one server share. Connections hold it by
// shared_ptr, so it outlives the http_server object if they do.
struct server_shared {
  server_shared(boost::asio::io_context& io, http_options options,
                std::shared_ptr<const router> router_ptr, metrics_registry& registry)
      : ioc(io),
        opts(std::move(options)),
        routes(std::move(router_ptr)),
        metrics(registry),
        limits(connection_limits::make(opts.max_connections, opts.max_connections_per_client,
                                       &metrics.connections_active)),
        tracker(io) {}

  boost::asio::io_context& ioc;
  const http_options opts;
  const std::shared_ptr<const router> routes;
  http_metrics metrics;
  // Every open connection holds a slot, upgraded ones included.
  const std::shared_ptr<connection_limits> limits;
  // The HTTP sessions (not the upgraded connections), for shutdown.
  connection_tracker tracker;
  // WebSocket upgrades by path (set before the io_context runs, then only read).
  std::map<std::string, http_server::upgrade_handler, std::less<>> upgrades;
};

}  // namespace bellhop::gateway
