#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace bellhop::realtime {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s) noexcept;

// The one check before text read from Redis becomes a WebSocket text frame (a dashboard's
// event, a web chat guest's reply): anything in Redis may have been written by anyone with
// access to it, and a frame that is not UTF-8 makes the browser close the socket (1007).
// False for such text, which the caller drops; it is counted and logged at warn (the first,
// then every 1000th), naming `where` but not the bytes.
bool frame_text_ok(std::string_view text, std::string_view where);

// Texts frame_text_ok refused in this process (bellhop_websocket_invalid_utf8_dropped_total).
std::uint64_t invalid_utf8_dropped() noexcept;

}  // namespace bellhop::realtime
