#include "bellhop/server/frame_text.hpp"

#include <spdlog/spdlog.h>

namespace bellhop::server {
namespace {

std::atomic<std::uint64_t> dropped{0};

}  // namespace


bool frame_text_ok(std::string_view text, std::string_view where) {
  if (is_valid_utf8(text)) return true;
  const auto n = dropped.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n % 1000 == 1) {
    spdlog::warn("websocket: {} from Redis is not valid UTF-8 ({} bytes): not sent ({} so far)",
                 where, text.size(), n);
  }
  return false;
}

std::uint64_t invalid_utf8_dropped() noexcept {
  return dropped.load(std::memory_order_relaxed);
}

}  // namespace bellhop::server
