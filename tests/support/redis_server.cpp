#include "support/redis_server.hpp"

#include <signal.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace bellhop::test {

redis_server::redis_server(std::string password, bool durable)
    : password_(std::move(password)), durable_(durable), port_(free_port()) {
  start();
}

redis_server::~redis_server() { stop(); }

std::string redis_server::socket_path() const { return (dir_.path() / "redis.sock").string(); }

void redis_server::start() {
  std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_),
                                   "--bind", "127.0.0.1", "--unixsocket", socket_path(),
                                   "--unixsocketperm", "700", "--dir", dir_.path().string(),
                                   "--save", "", "--appendonly", durable_ ? "yes" : "no",
                                   "--appendfsync", "everysec", "--daemonize", "no"};
  if (!password_.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(password_);
  }
  process_ = child_process(argv, dir_.path() / "redis.log");
  bool up = eventually([&] { return cli("PING") == "PONG"; });
  if (!up) throw std::runtime_error("redis-server did not start: " + process_.output());
}

void redis_server::stop() {
  process_.signal(SIGKILL);
  process_.wait(std::chrono::seconds(5));
}

void redis_server::restart() {
  stop();
  start();
}

void redis_server::freeze() { process_.signal(SIGSTOP); }
void redis_server::thaw() { process_.signal(SIGCONT); }

broker::redis_endpoint redis_server::tcp_endpoint() const {
  broker::redis_endpoint ep;
  ep.kind = broker::redis_endpoint::transport::tcp;
  ep.host = "127.0.0.1";
  ep.port = port_;
  ep.password = password_;
  return ep;
}

broker::redis_endpoint redis_server::unix_endpoint() const {
  broker::redis_endpoint ep;
  ep.kind = broker::redis_endpoint::transport::unix_socket;
  ep.path = socket_path();
  ep.password = password_;
  return ep;
}

std::string redis_server::url() const {
  std::string auth = password_.empty() ? "" : ":" + password_ + "@";
  return "redis://" + auth + "127.0.0.1:" + std::to_string(port_);
}

std::string redis_server::cli(const std::string& args) const {
  std::string cmd = "redis-cli --no-auth-warning -s '" + socket_path() + "'";
  if (!password_.empty()) cmd += " -a '" + password_ + "'";
  return run_capture(cmd + " " + args);
}

std::int64_t redis_server::command_calls(const std::string& command) const {
  const auto info = cli("INFO commandstats");
  const auto field = "cmdstat_" + command + ":calls=";
  const auto at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

broker::broker_options fast_broker_options(const broker::redis_endpoint& ep) {
  using namespace std::chrono_literals;
  broker::broker_options o;
  o.endpoint = ep;
  o.command_timeout = 2000ms;
  o.connect_timeout = 1000ms;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  return o;
}

}  // namespace bellhop::test
