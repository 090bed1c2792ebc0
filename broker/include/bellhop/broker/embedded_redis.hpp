#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "bellhop/broker/redis_url.hpp"

namespace bellhop::broker {

struct embedded_redis_options {
  std::filesystem::path data_dir;          // redis.conf, AOF, socket and password file live here
  std::string redis_server = "redis-server";  // binary name or path
  std::uint16_t port = 6390;               // loopback TCP port for local AI engines; 0 = none
  std::string durability = "everysec";     // appendfsync: "everysec" or "always"
  std::string maxmemory;                   // e.g. "512mb"; empty = no limit
  std::chrono::milliseconds start_timeout{10000};
  std::chrono::milliseconds stop_timeout{10000};
  std::chrono::milliseconds restart_backoff_initial{200};
  std::chrono::milliseconds restart_backoff_max{10000};
};

struct embedded_redis_stats {
  bool running = false;
  std::uint64_t restarts = 0;
  int pid = 0;
};

// Runs a private redis-server as a child of bellhop: writes its config into the data dir,
// generates the password once (0600 file), starts it in its own process group with a parent-death
// signal, waits until it answers, restarts it with backoff when it dies, and stops it on stop().
class embedded_redis {
 public:
  explicit embedded_redis(embedded_redis_options options);
  ~embedded_redis();  // stop()
  embedded_redis(const embedded_redis&) = delete;
  embedded_redis& operator=(const embedded_redis&) = delete;

  // Prepares the data dir and starts Redis; returns once it answers PING. On failure the error is
  // one line that tells the operator what to do (missing redis-server, unwritable data dir...).
  boost::system::result<void, std::string> start();
  // Graceful shutdown (SIGTERM, then SIGKILL after stop_timeout). Idempotent.
  void stop();

  // The endpoint bellhop itself uses (the unix socket, with the password).
  redis_endpoint endpoint() const;
  // How a process on this host connects (loopback TCP), with the password file's path instead
  // of the password itself: for the startup log line.
  std::string connect_hint() const;
  std::filesystem::path password_file() const;
  embedded_redis_stats stats() const;

 private:
  class impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace bellhop::broker
