#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "bellhop/broker/backoff.hpp"
#include "bellhop/broker/broker.hpp"
#include "faq.hpp"

namespace bellhop::demo {

struct engine_options {
  std::string consumer;    // unique among the consumers of one Redis
  std::string key_prefix;  // Bellhop's redis.key_prefix
  std::chrono::milliseconds visibility_timeout{30000};
  std::chrono::seconds block{5};  // BLMOVE timeout; also bounds how long a stop waits
};

// One consumer of inbound:messages following Bellhop's consumer contract:
//   heartbeat  SET <inbound>:heartbeat:<consumer> 1 PX <visibility timeout> and
//              SADD <inbound>:consumers <consumer>, before the first take and every
//              visibility_timeout/3 after it;
//   take       BLMOVE <inbound> <inbound>:processing:<consumer> RIGHT LEFT <block>;
//   settle     the reply or the staff hand-off (both on outbound:<channel>) and the ack
//              (LREM of the exact element) in one MULTI/EXEC, see settle(); only commands
//              Bellhop's engine ACL user may run.
// Everything runs on one executor (one thread); the broker does the I/O.
class engine {
 public:
  engine(boost::asio::any_io_executor ex, broker::broker& redis, faq rules, engine_options o);
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Sets the heartbeat, then takes messages until stop(). `on_stopped` runs once, after the
  // heartbeat key has been deleted (or the attempt failed).
  void start(std::function<void()> on_stopped);
  // Graceful stop: a message already taken is still answered and acked; a BLMOVE in flight is
  // waited for (at most `block`) and whatever it returns is handled too.
  void stop();

  std::uint64_t handled() const noexcept { return handled_; }

 private:
  std::string key(std::string_view name) const { return options_.key_prefix + std::string(name); }
  template <typename Handler>
  void beat(Handler&& handler);
  void first_heartbeat();
  void schedule_heartbeat();
  void take();
  void handle(std::string element);
  void settle(std::string element, std::string list, std::string payload, std::string what);
  void commit(std::string element, std::string list, std::string payload, std::string what);
  void settle_failed(std::string why, std::string element, std::string list, std::string payload,
                     std::string what);
  void ack_invalid(std::string element, std::string why);
  void retry(std::function<void()> fn);
  void shut_down();

  boost::asio::any_io_executor ex_;
  broker::broker& redis_;
  faq faq_;
  engine_options options_;
  std::string inbound_, processing_, heartbeat_, consumers_;
  boost::asio::steady_timer heartbeat_timer_;
  boost::asio::steady_timer retry_timer_;
  broker::backoff backoff_;
  std::function<void()> on_stopped_;
  bool stopping_ = false;
  bool shut_down_ = false;
  std::uint64_t handled_ = 0;
};

}  // namespace bellhop::demo
