#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/channels/types.hpp"
#include "bellhop/gateway/config.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/gateway/metrics.hpp"
#include "bellhop/ratelimit/limiter.hpp"
#include "outbound_message.hpp"

namespace bellhop::gateway {

struct rate_limits;

// What the dispatcher needs of one channel: how to send, and which rate limits a message
// passes before it is sent (sender, recipient pair, property caps; may be none).
struct outbound_channel {
  std::string name;  // "whatsapp", "sms", …: the queue is outbound:<name>
  // The property the channel belongs to (channels.<name>.property_id): only its messages are
  // sent on the channel; another property's go to the dead letters (docs/outbound.md).
  std::string property_id;
  std::function<void(const channels::outbound_message&, boost::asio::any_io_executor,
                     std::function<void(channels::send_result)>)>
      send;
  std::function<std::vector<ratelimit::limit_key>(const channels::outbound_message&)> limits;
  // How many of the first `limits` hold for the whole channel (the sender's): when one of
  // them refuses, the message keeps its place and the channel waits; the others (a recipient,
  // a property) delay that message only.
  std::size_t channel_wide_limits = 0;
  // Recipients can opt out (SMS STOP): sends to them fail at once, without a provider call.
  bool opt_out = false;
};

// The outbound sender of one process: per channel, an intake that moves each element of
// outbound:<channel> (BLMOVE, into this process's processing list) and files it by priority,
// and a dispatcher that keeps up to outbound.concurrency sends in flight, taking the
// lowest-priority-number messages first, passing them through their rate limits (a limited
// message waits in outbound:<channel>:delayed until its retry-after), and ending each send as
// sent, retried with backoff, or dead. A heartbeat lets other processes hand this one's
// in-flight sends back to the queues if it dies, and this one does the same for them.
class outbound_service {
 public:
  outbound_service(boost::asio::any_io_executor ex, broker::broker& redis, const contract::key_space& keys,
                   const config& cfg, rate_limits* limits, std::vector<outbound_channel> channels,
                   metrics_registry& metrics);
  ~outbound_service();  // stop()s
  outbound_service(const outbound_service&) = delete;
  outbound_service& operator=(const outbound_service&) = delete;

  void start();
  // No new send starts; sends in flight finish on their own (or are recovered later).
  void stop();
  const std::string& gateway_id() const;

 private:
  class impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace bellhop::gateway
