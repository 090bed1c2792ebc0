#include "support/redis_client.hpp"

#include <gtest/gtest.h>

#include <future>
#include <utility>

#include "support/redis_server.hpp"

namespace bellhop::test {

using boost::system::error_code;

redis_client::redis_client(const broker::redis_endpoint& ep) : broker_(fast_broker_options(ep)) {
  broker_.start();
}

redis_client::~redis_client() {
  broker_.stop();
  io_.drain();
}

broker::reply redis_client::run(broker::command cmd) {
  const auto name = cmd.empty() ? std::string() : cmd.front();
  std::promise<std::pair<error_code, broker::reply>> p;
  auto f = p.get_future();
  broker_.post(std::move(cmd), io_.executor(), [&p](error_code ec, broker::reply r) {
    p.set_value({ec, std::move(r)});
  });
  auto [ec, r] = f.get();
  EXPECT_FALSE(ec) << name << ": " << ec.message() << " " << r.to_string();
  return r;
}

broker::reply redis_client::try_run(broker::command cmd) {
  std::promise<broker::reply> p;
  auto f = p.get_future();
  broker_.post(std::move(cmd), io_.executor(),
               [&p](error_code, broker::reply r) { p.set_value(std::move(r)); });
  return f.get();
}

std::string redis_client::get(broker::command cmd) {
  auto r = run(std::move(cmd));
  return r.is_string() ? r.str() : r.is_integer() ? std::to_string(r.integer()) : "<nil>";
}

}  // namespace bellhop::test
