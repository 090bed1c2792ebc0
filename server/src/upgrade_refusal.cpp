#include "bellhop/server/upgrade_refusal.hpp"

#include <boost/beast/http/write.hpp>
#include <chrono>
#include <memory>

namespace bellhop::gateway {

void refuse_upgrade(boost::beast::tcp_stream stream, response res) {
  struct state {
    boost::beast::tcp_stream stream;
    response res;
  };
  auto s = std::make_shared<state>(state{std::move(stream), std::move(res)});
  s->res.set(http::field::server, "bellhop");
  s->res.keep_alive(false);
  s->res.prepare_payload();
  s->stream.expires_after(std::chrono::seconds(5));
  http::async_write(s->stream, s->res, [s](boost::system::error_code, std::size_t) {
    boost::system::error_code ignored;
    s->stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
  });
}

}  // namespace bellhop::gateway
