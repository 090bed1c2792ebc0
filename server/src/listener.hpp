#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>

namespace bellhop::gateway {

struct server_shared;

// Accepts connections on its own strand and hands each to an http_session on a new strand, or
// to an overload_session when max_connections are open or the peer has
// max_connections_per_client open.
class listener : public std::enable_shared_from_this<listener> {
 public:
  listener(boost::asio::io_context& ioc, std::shared_ptr<server_shared> shared);

  // Synchronous, before run().
  boost::system::error_code open(const boost::asio::ip::tcp::endpoint& endpoint);
  std::uint16_t port() const;
  void run();
  // Thread-safe: closes the acceptor, then starts the connections' shutdown; `done` (may be
  // empty) runs once none is left.
  void stop(std::function<void()> done);

 private:
  void accept();
  void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& ioc_;
  const std::shared_ptr<server_shared> shared_;
  boost::asio::ip::tcp::acceptor acceptor_;  // on a strand, like retry_timer_
  boost::asio::steady_timer retry_timer_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
  bool overloaded_ = false;  // for logging the transitions only
};

}  // namespace bellhop::gateway
