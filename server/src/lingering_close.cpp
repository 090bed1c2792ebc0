#include "lingering_close.hpp"

#include <boost/beast/core/bind_handler.hpp>
#include <chrono>

namespace bellhop::gateway {
namespace {
constexpr std::chrono::seconds linger_time{1};
}

lingering_close::lingering_close(boost::beast::tcp_stream&& stream) : stream_(std::move(stream)) {}

void lingering_close::run() {
  boost::beast::error_code ec;
  stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  if (ec) return;  // already gone; the destructor closes the socket
  stream_.expires_after(linger_time);
  read();
}

void lingering_close::read() {
  stream_.async_read_some(
      boost::asio::buffer(discard_),
      boost::beast::bind_front_handler(&lingering_close::on_read, shared_from_this()));
}

void lingering_close::on_read(boost::beast::error_code ec, std::size_t) {
  if (!ec) read();
  // Peer closed, deadline passed or error: dropping the last reference closes the socket.
}

}  // namespace bellhop::gateway
