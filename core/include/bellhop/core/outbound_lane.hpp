#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bellhop/channels/types.hpp"
#include "bellhop/ratelimit/limiter.hpp"

// The seam between the outbound flow and the channels that carry replies out: each channel
// transport makes its lane, the app hands the lanes to the dispatcher (docs/architecture.md).

namespace bellhop::gateway {

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
  // WhatsApp's customer-service window (docs/outbound.md): the dispatcher reads, with each
  // message it takes to send, when the guest last wrote in its conversation
  // (message.last_inbound_at, in the same script: no further round trip) ...
  bool reads_last_inbound = false;
  // ... and `admit` decides, before the rate limits, whether the message goes as it is, as
  // `admit` changed it (a WhatsApp text outside the window becomes its template), or not at all:
  // a send_result to end it with, without a provider call. Unset: every message goes.
  std::function<std::optional<channels::send_result>(channels::outbound_message&,
                                                     std::int64_t now_ms)>
      admit;
};

}  // namespace bellhop::gateway
