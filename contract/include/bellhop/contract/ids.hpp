#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace bellhop::contract {

// A time-sortable id: 48-bit Unix milliseconds then 80 random bits, Crockford base32, 26
// characters (the ULID layout). Ids of later milliseconds sort after earlier ones.
std::string make_message_id(std::chrono::system_clock::time_point now);

// `bytes` random bytes in lower-case hex, for ids that need uniqueness, not secrecy (sessions,
// a process's consumer token); secrets come from secrets.hpp.
std::string make_random_hex(std::size_t bytes);

// SHA-256 of `data`. The digest is fetched from OpenSSL once: ::SHA256() looks it up by name
// on every call (half of its cost, measured on the inbound path).
std::array<unsigned char, 32> sha256(std::string_view data);

// Lower-case hex of the first `bytes` (at most 32) bytes of SHA-256(data).
std::string sha256_hex(std::string_view data, std::size_t bytes = 32);

// Stable per property + channel + guest address: "c_" + 32 hex digits of SHA-256.
std::string make_conversation_id(std::string_view property_id, std::string_view channel,
                                 std::string_view guest);

// RFC 3339 UTC with milliseconds: 2026-11-27T21:00:00.123Z
std::string format_timestamp(std::chrono::system_clock::time_point t);

}  // namespace bellhop::contract
