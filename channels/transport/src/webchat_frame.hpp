#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bellhop/channels/types.hpp"

namespace bellhop::gateway {

// A frame from a guest's browser (docs/webchat.md), read and checked:
//   {"type":"message","client_id":"…","text":"…"}   a message for the hotel
//   {"type":"received","id":"…"}                    a reply was shown
struct webchat_frame {
  enum class kind { message, received, refused };
  kind what = kind::refused;
  std::string client_id;  // message: 1-64 letters, digits, - _ .
  std::string text;       // message: not empty
  std::string id;         // received: the reply's id
  std::string error;      // refused: the error frame to answer with
};

// Parsed by bellhop::json::parse: at most max_frame_bytes, 32 levels, UTF-8.
inline constexpr std::size_t webchat_max_frame_bytes = 64 * 1024;
webchat_frame parse_webchat_frame(std::string_view text);

// {"type":"error","code","message"[,"client_id"][,"retry_after_ms"]}: never carries what the
// guest sent beyond a client_id (validated: at most 64 characters).
std::string webchat_error_frame(std::string_view code, std::string_view message,
                                std::string_view client_id = {}, std::int64_t retry_after_ms = 0);

// The canonical inbound message of a guest's chat message, before validate_inbound_message
// checks and enriches it like a POST /v1/messages/inbound body.
channels::guest_message webchat_guest_message(std::string_view guest, std::string_view client_id,
                                              std::string_view text);

}  // namespace bellhop::gateway
