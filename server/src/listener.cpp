#include "listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "bellhop/core/client_address.hpp"
#include "http_session.hpp"
#include "overload_session.hpp"
#include "server_shared.hpp"

namespace bellhop::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

listener::listener(asio::io_context& ioc, std::shared_ptr<server_shared> shared)
    : ioc_(ioc),
      shared_(std::move(shared)),
      acceptor_(asio::make_strand(ioc)),
      retry_timer_(acceptor_.get_executor()) {}

boost::system::error_code listener::open(const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) port_ = acceptor_.local_endpoint(ec).port();
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }
  return ec;
}

std::uint16_t listener::port() const {
  return port_;
}

void listener::run() {
  asio::post(acceptor_.get_executor(),
             boost::beast::bind_front_handler(&listener::accept, shared_from_this()));
}

void listener::stop(std::function<void()> done) {
  asio::post(acceptor_.get_executor(),
             [self = shared_from_this(), done = std::move(done)]() mutable {
               self->stopped_ = true;
               boost::system::error_code ignored;
               self->acceptor_.close(ignored);
               self->retry_timer_.cancel();
               // After the close, so that `done` also means no connection can arrive any more.
               self->shared_->tracker.begin_shutdown(std::move(done));
             });
}

void listener::accept() {
  if (stopped_) return;
  acceptor_.async_accept(asio::make_strand(ioc_), boost::beast::bind_front_handler(
                                                      &listener::on_accept, shared_from_this()));
}

void listener::on_accept(boost::system::error_code ec, tcp::socket socket) {
  if (stopped_) return;  // a connection that raced the close: dropped
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Typically out of file descriptors: back off instead of spinning.
    spdlog::warn("http: accept failed: {}", ec.message());
    retry_timer_.expires_after(std::chrono::milliseconds(100));
    retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code wait_ec) {
      if (!wait_ec) self->accept();
    });
    return;
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);

  const auto& opts = shared_->opts;
  // A trusted proxy carries many clients: its connections count in the total only, until one
  // is upgraded to a client's WebSocket (http_session). Anyone else is their own client.
  const auto peer = socket.remote_endpoint(ignored).address();
  const std::string client = opts.proxies.contains(peer) ? std::string() : client_key(peer);
  connection_limits::refusal why = connection_limits::refusal::none;
  auto slot = shared_->limits->acquire(client, why);
  if (why == connection_limits::refusal::total) {
    shared_->metrics.connections_rejected.inc();
    if (!overloaded_) {
      overloaded_ = true;
      spdlog::warn("http: {} connections open (max_connections); answering 503 to new ones",
                   opts.max_connections);
    }
    std::make_shared<overload_session>(std::move(socket), opts.write_timeout,
                                       overload_session::reason::server_full)
        ->run();
  } else if (why == connection_limits::refusal::per_client) {
    shared_->metrics.client_connections_rejected.inc();
    if (std::uint64_t unlogged = 0; shared_->limits->should_warn(unlogged)) {
      spdlog::warn(
          "http: {} has {} connections open (http.max_connections_per_ip); answering 429 to "
          "more ({} such refusals not logged before this one)",
          client, opts.max_connections_per_client, unlogged);
    }
    std::make_shared<overload_session>(std::move(socket), opts.write_timeout,
                                       overload_session::reason::client_full)
        ->run();
  } else {
    if (overloaded_) {
      overloaded_ = false;
      spdlog::info("http: below max_connections again; accepting connections");
    }
    std::make_shared<http_session>(std::move(socket), shared_, std::move(slot))->start();
  }
  accept();
}

}  // namespace bellhop::gateway
