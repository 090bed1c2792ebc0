#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "bellhop/core/client_address.hpp"
#include "bellhop/server/http_types.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/server/router.hpp"

namespace bellhop::gateway {

struct http_options {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;
  std::size_t max_body_bytes = 1 << 20;     // larger: 413 payload_too_large
  std::size_t max_header_bytes = 16 << 10;  // larger: 431 headers_too_large
  // From the first byte of a request (or from accept) until it is read completely.
  std::chrono::milliseconds read_timeout{10000};
  // Between keep-alive requests.
  std::chrono::milliseconds idle_timeout{60000};
  // For writing one response to a slow reader.
  std::chrono::milliseconds write_timeout{10000};
  std::size_t max_connections = 10000;  // beyond: 503 too_many_connections, then close
  // Per client_key (an IPv4 address, an IPv6 /64); beyond: 429 too_many_client_connections.
  // Counted at accept for a direct peer, at the WebSocket upgrade for a trusted proxy's client.
  std::size_t max_connections_per_client = 500;
  trusted_proxies proxies;  // whose X-Forwarded-For is believed
};

// What an upgraded connection takes along from the HTTP server.
struct upgrade_context {
  boost::asio::ip::address client;  // client_address() of the upgrade request
  // The connection's place under max_connections and max_connections_per_client: held for as
  // long as the socket is open.
  std::shared_ptr<void> slot;
};

class listener;
struct server_shared;

// HTTP/1.1 server on Beast. Each connection runs on its own strand of `ioc`; requests are
// routed by `routes` and recorded in `metrics` (bellhop_http_*). `metrics` and `ioc` must
// outlive every connection, i.e. until shutdown's `done` or until `ioc` stops.
class http_server {
 public:
  http_server(boost::asio::io_context& ioc, http_options opts, std::shared_ptr<const router> routes,
              metrics_registry& metrics);
  // Stops accepting; connections still open keep running until they end on their own.
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // A request for `path` (query ignored) that asks for a WebSocket upgrade is handed to
  // `handler` with its connection; the HTTP server forgets the connection but its connection
  // slot goes along (upgrade_context). One handler per path; call before the io_context runs.
  using upgrade_handler = std::function<void(boost::beast::tcp_stream, request, upgrade_context)>;
  void on_upgrade(std::string path, upgrade_handler handler);

  // Binds and starts accepting. The error is one line, e.g.
  // "cannot listen on 127.0.0.1:8080: Address already in use".
  boost::system::result<void, std::string> start();
  // The bound port (useful with port 0); 0 before start().
  std::uint16_t port() const { return port_; }

  // Graceful shutdown, callable from any thread: stop accepting; idle keep-alive connections
  // close now; a request being read or handled is finished, answered with Connection: close,
  // and its connection closed. `done` runs on the io_context once the listener is closed and
  // no connection is left. The caller enforces the overall deadline.
  void shutdown(std::function<void()> done);

  std::size_t active_connections() const;

 private:
  boost::asio::io_context& ioc_;
  std::shared_ptr<server_shared> shared_;
  std::shared_ptr<listener> listener_;
  std::uint16_t port_ = 0;
};

}  // namespace bellhop::gateway
