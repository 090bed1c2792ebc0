#include "overload_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/write.hpp>

#include "bellhop/server/json_response.hpp"
#include "lingering_close.hpp"

namespace bellhop::gateway {

response too_many_client_connections(const request& req) {
  return too_many_requests(req, "too_many_client_connections",
                           "too many connections from your address; close some and retry",
                           std::chrono::seconds(5));
}

overload_session::overload_session(boost::asio::ip::tcp::socket&& socket,
                                   std::chrono::milliseconds write_timeout, reason why)
    : stream_(std::move(socket)), write_timeout_(write_timeout) {
  request req;
  req.keep_alive(false);
  if (why == reason::server_full) {
    res_ = service_unavailable(req, "too_many_connections",
                               "the server is at its connection limit; retry later",
                               std::chrono::seconds(1));
  } else {
    res_ = too_many_client_connections(req);
  }
  res_.set(http::field::server, "bellhop");
}

void overload_session::run() {
  boost::asio::dispatch(stream_.get_executor(), boost::beast::bind_front_handler(
                                                    &overload_session::write, shared_from_this()));
}

void overload_session::write() {
  stream_.expires_after(write_timeout_);
  http::async_write(
      stream_, res_,
      boost::beast::bind_front_handler(&overload_session::on_write, shared_from_this()));
}

void overload_session::on_write(boost::beast::error_code ec, std::size_t) {
  if (ec) return;
  std::make_shared<lingering_close>(std::move(stream_))->run();
}

}  // namespace bellhop::gateway
