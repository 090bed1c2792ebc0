#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/broker/redis_url.hpp"

namespace bellhop::broker {

struct embedded_redis_options {
  std::filesystem::path data_dir;          // redis.conf, AOF, socket and password file live here
  std::string redis_server = "redis-server";  // binary name or path
  std::uint16_t port = 6390;               // loopback TCP port for local AI engines; 0 = none
  std::string durability = "everysec";     // appendfsync: "everysec" or "always"
  // e.g. "512mb"; "0" = no limit; empty = default_maxmemory_bytes(machine_memory_bytes()).
  std::string maxmemory;
  std::string key_prefix;  // redis.key_prefix: the engine user's key patterns carry it
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

// The ACL user AI engines log in as (docs/ai-engine.md, "Connecting"); bellhop itself keeps the
// default user, with full access.
inline constexpr std::string_view engine_user = "engine";

// The ACL rules of the engine user, one token each (as ACL SETUSER takes them, without the user
// name, the "on" and the password): exactly the commands and keys of docs/ai-engine.md, every key
// pattern carrying `key_prefix` (its glob characters escaped).
std::vector<std::string> engine_acl_rules(std::string_view key_prefix);
// The ACL SETUSER command that creates the same user on an external Redis, on one line as
// redis-cli reads it. The password appears as its SHA-256 ("#<hex>"), or as the placeholder
// ">CHANGE-ME" when `password` is empty.
std::string engine_acl_setuser(std::string_view key_prefix, std::string_view password);

// The embedded Redis's maxmemory when redis.embedded.maxmemory is empty: a quarter of
// `memory_bytes`, at least 256 MiB and at most 8 GiB (docs/configuration.md says why).
std::uint64_t default_maxmemory_bytes(std::uint64_t memory_bytes) noexcept;
// Physical memory, or the cgroup's memory limit when that is lower (a container); 0 if unknown.
std::uint64_t machine_memory_bytes() noexcept;

// How another bellhop command (`bellhop user …`) reaches the embedded Redis of the bellhop that
// runs with `data_dir`: its unix socket and the password bellhop keeps in the data dir. The error
// is one line: not running (no socket), or the password file cannot be read (wrong user).
boost::system::result<redis_endpoint, std::string> running_embedded_endpoint(
    const std::filesystem::path& data_dir);

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
  // The engine user's password (generated once, 0600; group-readable is kept).
  std::filesystem::path engine_password_file() const;
  // The maxmemory the running config sets, in bytes; 0 = no limit.
  std::uint64_t maxmemory_bytes() const;
  embedded_redis_stats stats() const;

 private:
  class impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace bellhop::broker
