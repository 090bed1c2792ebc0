#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <string>

#include "bellhop/channels/types.hpp"

namespace bellhop::gateway {

// A provider's HTTP answer. `status` 0 means no answer: `error` says why (connect refused,
// timeout, TLS, malformed response).
struct provider_response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;
  std::string error;
};

// Calls provider APIs (http:// or https://, TLS verified against the system's CA store) on the
// caller's executor, each call on a connection of its own, with one deadline for all of it.
class provider_client {
 public:
  explicit provider_client(std::chrono::milliseconds timeout);
  void call(const channels::http_call& c, boost::asio::any_io_executor ex,
            std::function<void(provider_response)> done);

 private:
  std::chrono::milliseconds timeout_;
  boost::asio::ssl::context tls_;
};

}  // namespace bellhop::gateway
