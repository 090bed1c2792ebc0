#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/channels/types.hpp"
#include "bellhop/ratelimit/limiter.hpp"

// The seam between the outbound flow and the channels that carry replies out: each channel
// transport makes its lane, the app hands the lanes to the dispatcher (docs/architecture.md).

namespace bellhop::gateway {

// One account of a channel (a WhatsApp number, a Twilio sender, a mailbox, a web chat site):
// its id (docs/properties.md, "Accounts and routing") and the property it belongs to.
struct channel_account {
  std::string id, property_id;
};

// The account a message goes out from (docs/outbound.md): the one it names (`named`), else the
// one the guest wrote to (`conversation`, when it is still an account of the message's
// property), else the property's first. nullptr when there is none, `why` then says so.
// `channel` names the channel in `why`.
const channel_account* pick_account(std::string_view channel,
                                    const std::vector<channel_account>& accounts,
                                    std::string_view property_id, std::string_view named,
                                    std::string_view conversation, std::string& why);

// What the dispatcher needs of one channel: how to send, and which rate limits a message
// passes before it is sent (sender, recipient pair, property caps; may be none).
struct outbound_channel {
  std::string name;  // "whatsapp", "sms", …: the queue is outbound:<name>
  // The channel's accounts: a message is sent from one of its property's (the dispatcher sets
  // the message's `account` before `limits` and `send` see it); a message of a property
  // without one goes to the dead letters (docs/outbound.md).
  std::vector<channel_account> accounts;
  std::function<void(const channels::outbound_message&, boost::asio::any_io_executor,
                     std::function<void(channels::send_result)>)>
      send;
  std::function<std::vector<ratelimit::limit_key>(const channels::outbound_message&)> limits;
  // How many of the first `limits` hold for the whole sender (the account's): when one of them
  // refuses, the message keeps its place and the channel waits (with several accounts, that
  // account's messages wait in the delayed set, the others go on); the others (a recipient, a
  // property) delay that message only.
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
