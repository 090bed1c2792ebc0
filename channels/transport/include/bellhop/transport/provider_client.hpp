#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
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
// caller's executor, with one deadline for all of a call. Connections are kept alive and
// reused: a call takes an idle connection to the same scheme, host and port made on the same
// executor, unless it has been idle too long or the server has closed it (or sent anything)
// meanwhile; otherwise it opens a new one. At most `max_idle_per_origin` idle connections are
// kept per origin (outbound.concurrency: as many as one lane's sends use at once).
class provider_client {
 public:
  provider_client(std::chrono::milliseconds timeout, std::size_t max_idle_per_origin);
  ~provider_client();
  void call(const channels::http_call& c, boost::asio::any_io_executor ex,
            std::function<void(provider_response)> done);

  struct pool;  // the idle connections (shared with calls in flight, which return theirs)

 private:
  std::chrono::milliseconds timeout_;
  boost::asio::ssl::context tls_;
  std::shared_ptr<pool> pool_;
};

}  // namespace bellhop::gateway
