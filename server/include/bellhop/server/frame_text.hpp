#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "bellhop/json/utf8.hpp"

namespace bellhop::server {

using json::is_valid_utf8;

// The one check before text read from Redis becomes a WebSocket text frame (a dashboard's
// event, a web chat guest's reply): anything in Redis may have been written by anyone with
// access to it, and a frame that is not UTF-8 makes the browser close the socket (1007).
// False for such text, which the caller drops; it is counted and logged at warn (the first,
// then every 1000th), naming `where` but not the bytes.
bool frame_text_ok(std::string_view text, std::string_view where);

// Texts frame_text_ok refused in this process (bellhop_websocket_invalid_utf8_dropped_total).
std::uint64_t invalid_utf8_dropped() noexcept;

}  // namespace bellhop::server
