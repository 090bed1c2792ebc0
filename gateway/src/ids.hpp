#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace bellhop::gateway {

// A time-sortable id: 48-bit Unix milliseconds then 80 random bits, Crockford base32, 26
// characters (the ULID layout). Ids of later milliseconds sort after earlier ones.
std::string make_message_id(std::chrono::system_clock::time_point now);

// Stable per property + channel + guest address: "c_" + 32 hex digits of SHA-256.
std::string make_conversation_id(std::string_view property_id, std::string_view channel,
                                 std::string_view guest);

// RFC 3339 UTC with milliseconds: 2026-11-27T21:00:00.123Z
std::string format_timestamp(std::chrono::system_clock::time_point t);

}  // namespace bellhop::gateway
