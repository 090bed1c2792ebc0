#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bellhop/broker/error.hpp"
#include "bellhop/broker/redis_url.hpp"
#include "bellhop/broker/reply.hpp"

namespace bellhop::broker {

using command = std::vector<std::string>;  // binary-safe arguments, e.g. {"LPUSH", "k", "v"}
using reply_handler = std::function<void(boost::system::error_code, reply)>;
// Pub/sub message: channel and payload. The payload is shared by every local subscriber.
using message_handler =
    std::function<void(const std::string& channel, std::shared_ptr<const std::string> payload)>;
// Called each time the channel is (re)subscribed on Redis; after a reconnect this is the signal
// that messages may have been missed while the subscriber was away.
using subscribed_handler = std::function<void(const std::string& channel)>;

struct broker_options {
  redis_endpoint endpoint;
  std::chrono::milliseconds command_timeout{5000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::string client_name = "bellhop";
  std::size_t max_blocking_connections = 64;
};

enum class connection_state { connecting, ready, disconnected, stopped };

struct broker_stats {
  bool up = false;                  // the command connection is ready
  std::uint64_t commands = 0;       // commands written to Redis
  std::uint64_t errors = 0;         // commands that completed with an error (any errc)
  std::uint64_t timeouts = 0;       // of which timed out
  std::uint64_t reconnects = 0;     // successful connections after the first, all connections
  std::uint64_t connection_failures = 0;
  std::uint64_t pubsub_messages = 0;
  std::uint64_t out_of_memory = 0;  // writes Redis refused at maxmemory (error replies and
                                    // those scripts reported: note_out_of_memory)
};

// A Lua script known by its SHA1, computed locally. Calls go out as EVALSHA; when Redis answers
// NOSCRIPT (script cache flushed, Redis restarted) the broker loads it and retries once.
struct script {
  std::string name;
  std::string body;
  std::string sha1;
  static script make(std::string name, std::string body);
};

// The Redis client of a bellhop process (the threading model). One broker thread runs
// a uv loop that owns every hiredis context; other threads hand it work through post(), which
// is thread-safe and wakes the loop. Each wake-up drains the whole queue, so commands from many
// callers leave in one pipelined write. Handlers run on the executor passed with the command,
// never on the broker thread.
class broker {
 public:
  explicit broker(broker_options options);
  ~broker();  // stops the broker if still running
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  // Starts the broker thread and the connections. Commands posted before the first connection
  // is ready wait for it (up to the command timeout).
  void start();
  // Fails everything pending with errc::shutting_down, closes the connections, joins the thread.
  void stop();

  // Sends one command on the shared command connection.
  void post(command cmd, boost::asio::any_io_executor ex, reply_handler handler);
  // Runs a script with EVALSHA (NOSCRIPT -> SCRIPT LOAD and one retry).
  void eval(const script& s, std::vector<std::string> keys, std::vector<std::string> args,
            boost::asio::any_io_executor ex, reply_handler handler);
  // Sends a blocking command (BLMOVE, BRPOPLPUSH, BLPOP...) on a dedicated connection, so it
  // never holds up the shared one. `timeout` must exceed the command's own blocking timeout.
  void post_blocking(command cmd, std::chrono::milliseconds timeout,
                     boost::asio::any_io_executor ex, reply_handler handler);

  // Pub/sub through the process's single subscriber connection. A channel is SUBSCRIBEd on
  // Redis while at least one local subscription exists, and re-subscribed after reconnects.
  using subscription_id = std::uint64_t;
  subscription_id subscribe(std::string channel, boost::asio::any_io_executor ex,
                            message_handler on_message, subscribed_handler on_subscribed = {});
  void unsubscribe(subscription_id id);

  // Completion-token front end of post(): the handler's associated executor is used.
  template <typename CompletionToken>
  auto async_exec(command cmd, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, reply)>(
        [this](auto handler, command c) {
          auto ex = boost::asio::get_associated_executor(handler);
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          post(std::move(c), boost::asio::any_io_executor(ex),
               [shared](boost::system::error_code ec, reply r) {
                 (*shared)(ec, std::move(r));
               });
        },
        token, std::move(cmd));
  }

  connection_state state() const noexcept;
  bool ready() const noexcept { return state() == connection_state::ready; }
  broker_stats stats() const noexcept;
  // Counts a write refused because Redis is full that did not come back as an error reply (a
  // script caught Redis's refusal and reported it, or the caller refused it itself ahead of
  // maxmemory), and logs at warn (at most every 10 s) that Redis is full. Error replies that
  // are OOM are counted by the broker itself. Thread-safe.
  void note_out_of_memory() noexcept;
  const broker_options& options() const noexcept { return options_; }

 private:
  class impl;
  broker_options options_;
  std::unique_ptr<impl> impl_;
};

}  // namespace bellhop::broker
