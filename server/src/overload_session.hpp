#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <memory>

#include "bellhop/server/http_types.hpp"

namespace bellhop::gateway {

// 429 too_many_client_connections with Retry-After: 5: the answer to a client beyond
// max_connections_per_client, before its request is read or after (an upgrade).
response too_many_client_connections(const request& req);

// A connection accepted beyond max_connections (503 too_many_connections) or beyond its client's
// max_connections_per_client (429 too_many_client_connections): answered without reading the
// request, then closed.
class overload_session : public std::enable_shared_from_this<overload_session> {
 public:
  enum class reason { server_full, client_full };
  overload_session(boost::asio::ip::tcp::socket&& socket, std::chrono::milliseconds write_timeout,
                   reason why);
  void run();

 private:
  void write();
  void on_write(boost::beast::error_code ec, std::size_t bytes);

  boost::beast::tcp_stream stream_;
  std::chrono::milliseconds write_timeout_;
  response res_;
};

}  // namespace bellhop::gateway
