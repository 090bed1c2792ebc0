#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/redis_url.hpp"
#include "support/process.hpp"

namespace bellhop::test {

// A real redis-server for one test: its own temp dir, unix socket and loopback port,
// optional password. Can be stopped, restarted on the same port, frozen with SIGSTOP.
class redis_server {
 public:
  // durable: AOF on (fsync every second), so data survives restart() after a second.
  explicit redis_server(std::string password = {}, bool durable = false);
  ~redis_server();

  void start();    // starts and waits until it answers PING
  void stop();     // SIGKILL (a crash, as far as clients can tell)
  void restart();  // stop + start on the same port and socket
  void freeze();   // SIGSTOP
  void thaw();     // SIGCONT

  std::uint16_t port() const noexcept { return port_; }
  std::string socket_path() const;
  broker::redis_endpoint tcp_endpoint() const;
  broker::redis_endpoint unix_endpoint() const;
  std::string url() const;  // redis://[:password@]127.0.0.1:port
  // Runs redis-cli against this server and returns its stdout (trimmed).
  std::string cli(const std::string& args) const;
  // How many times Redis ran `command` ("evalsha", "script|load"), from INFO commandstats.
  std::int64_t command_calls(const std::string& command) const;

 private:
  temp_dir dir_;
  std::string password_;
  bool durable_;
  std::uint16_t port_;
  child_process process_;
};

// Broker options for tests: short timeouts and backoff so failures show quickly.
broker::broker_options fast_broker_options(const broker::redis_endpoint& ep);

}  // namespace bellhop::test
