#include "bellhop/server/http_server.hpp"

#include <boost/asio/ip/tcp.hpp>

#include "listener.hpp"
#include "server_shared.hpp"

namespace bellhop::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

http_server::http_server(asio::io_context& ioc, http_options opts,
                         std::shared_ptr<const router> routes, metrics_registry& metrics)
    : ioc_(ioc),
      shared_(std::make_shared<server_shared>(
          ioc, std::move(opts), routes ? std::move(routes) : std::make_shared<const router>(),
          metrics)) {}

http_server::~http_server() {
  if (listener_) listener_->stop(nullptr);
}

boost::system::result<void, std::string> http_server::start() {
  const auto& opts = shared_->opts;
  const auto fail = [&](const std::string& why) {
    const bool v6 = opts.host.find(':') != std::string::npos;
    return boost::system::result<void, std::string>(
        boost::system::in_place_error, "cannot listen on " +
                                           (v6 ? "[" + opts.host + "]" : opts.host) + ":" +
                                           std::to_string(opts.port) + ": " + why);
  };
  if (listener_) return fail("already listening");

  // Runs before the io_context threads do work for us; resolving a name here is fine.
  boost::system::error_code ec;
  tcp::resolver resolver(ioc_);
  const auto endpoints =
      resolver.resolve(opts.host, std::to_string(opts.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return fail(ec.message());
  if (endpoints.empty()) return fail("host has no address");

  auto l = std::make_shared<listener>(ioc_, shared_);
  if (ec = l->open(endpoints.begin()->endpoint()); ec) return fail(ec.message());
  port_ = l->port();
  listener_ = std::move(l);
  listener_->run();
  return {};
}

void http_server::shutdown(std::function<void()> done) {
  if (listener_) {
    listener_->stop(std::move(done));
  } else {
    shared_->tracker.begin_shutdown(std::move(done));
  }
}

void http_server::on_upgrade(std::string path, upgrade_handler handler) {
  shared_->upgrades[std::move(path)] = std::move(handler);
}

std::size_t http_server::active_connections() const {
  return shared_->limits->open();
}

}  // namespace bellhop::gateway
