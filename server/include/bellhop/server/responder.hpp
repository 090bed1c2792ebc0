#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "bellhop/server/http_types.hpp"

namespace bellhop::gateway {

// The handle a route handler completes its request with. Cheap to copy; every copy refers to
// the same request. The first send() wins, later ones are ignored, and send() may be called
// from any thread: the response is posted to the connection's strand.
//
// If every copy is destroyed without a send() (a handler bug), the request is answered with a
// 500 JSON error and the connection is closed, so a client is never left hanging on a dropped
// responder. A handler that keeps a copy and never sends is not detected.
class responder {
 public:
  using completion = std::function<void(response)>;

  // `on_complete` runs on `executor` with the response, at most once.
  // `client`: who sent the request (core/client_address.hpp's client_key: the peer, or the
  // address a trusted proxy names), for per-client limits.
  responder(boost::asio::any_io_executor executor, path_params params, completion on_complete,
            std::string client = {});

  void send(response res) const;
  // The connection's strand: post continuations here to run serialized with the connection.
  boost::asio::any_io_executor executor() const;
  // Value of a {name} path segment of the matched route; empty if the route has no such name.
  std::string_view param(std::string_view name) const;
  const path_params& params() const;
  // The client's key (an IPv4 address, an IPv6 /64); empty when the server did not say.
  const std::string& client() const;

 private:
  class state;
  std::shared_ptr<state> state_;
};

}  // namespace bellhop::gateway
