#pragma once

#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bellhop::realtime {

// A frame a dashboard sent (docs/realtime.md), read once into its fields. A field that is
// absent or not a string is "". What each type requires (and whether the token allows it) is
// the session's to check.
struct client_frame {
  std::string type;
  std::string token;                   // auth
  std::string property_id;             // subscribe, unsubscribe, reply, typing, takeover, …
  std::string conversation_id;         // reply, typing, takeover, release, read
  std::string client_msg_id;           // reply (and optional on takeover, release, read)
  std::string text;                    // reply
  std::optional<std::uint64_t> since;  // subscribe: given as a non-negative integer
  bool since_invalid = false;          // subscribe: given, not null, and not such an integer
};

// The frame's fields, or why the text is not a frame (the message of a bad_request error).
// Parsed by bellhop::json::parse: at most max_bytes (realtime.max_frame_bytes), 32 levels.
boost::system::result<client_frame, std::string> parse_client_frame(
    std::string_view text, std::size_t max_bytes = 64 * 1024);

}  // namespace bellhop::realtime
