#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bellhop/channels/types.hpp"

namespace bellhop::gateway {

// An outbound message as Bellhop files it: the canonical outbound JSON (DESIGN.md) with its id
// and priority first, defaults filled in.
struct normalized_outbound {
  std::string json;
  channels::outbound_message msg;
  std::string idempotency_key, created_at;
  std::int64_t delay_ms = 0;
};
// Reads one element of outbound:<channel> (or a POST /v1/messages/outbound body): "" when it
// is a message Bellhop can send, else why not. An `id` of Bellhop's form is kept (a message
// that comes back after a crash, a staff reply); otherwise a new one is given.
std::string normalize_outbound(std::string_view raw, std::string_view channel,
                               normalized_outbound& out);

}  // namespace bellhop::gateway
