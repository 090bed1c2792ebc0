#include "bellhop/core/redis_memory.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <charconv>

namespace bellhop::gateway {
namespace {

constexpr std::size_t max_info_bytes = 64 * 1024;  // INFO memory is about 1.5 KB

// The number after "\n<name>:" (or at the start), up to the line's end.
std::optional<std::uint64_t> field(std::string_view info, std::string_view name) {
  for (std::size_t at = 0; at < info.size();) {
    const auto end = std::min(info.find('\n', at), info.size());
    auto line = info.substr(at, end - at);
    at = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() <= name.size() || !line.starts_with(name) || line[name.size()] != ':') continue;
    const auto digits = line.substr(name.size() + 1);
    std::uint64_t value = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc{} || ptr != digits.data() + digits.size()) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

}  // namespace

redis_memory::redis_memory(broker::broker& redis, boost::asio::any_io_executor ex,
                           std::chrono::milliseconds interval)
    : redis_(redis), ex_(ex), interval_(interval), timer_(ex) {}

std::optional<redis_memory::usage> redis_memory::parse_info(std::string_view info) {
  if (info.size() > max_info_bytes) return std::nullopt;
  const auto used = field(info, "used_memory");
  const auto max = field(info, "maxmemory");
  if (!used || !max) return std::nullopt;
  return usage{*used, *max};
}

bool redis_memory::is_full(usage u, bool was_full) noexcept {
  return u.max > 0 && static_cast<double>(u.used) >=
                          (was_full ? resume_ratio : refuse_ratio) * static_cast<double>(u.max);
}

void redis_memory::start() {
  poll();
}

void redis_memory::stop() {
  stopped_ = true;
  boost::asio::post(ex_, [self = shared_from_this()] { self->timer_.cancel(); });
}

void redis_memory::schedule() {
  if (stopped_) return;
  timer_.expires_after(interval_);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->stopped_) self->poll();
  });
}

void redis_memory::poll() {
  redis_.post({"INFO", "memory"}, ex_,
              [self = shared_from_this()](boost::system::error_code ec, broker::reply r) {
                // No answer: keep what we knew (writes fail on their own while Redis is away).
                const auto u = !ec && r.is_string() ? parse_info(r.str()) : std::nullopt;
                if (u) {
                  // Refusing until now (this poll's figure, or what was stored since the last
                  // one, said so): refusing until below resume_ratio.
                  const bool was_full = self->full();
                  self->used_ = u->used;
                  self->max_ = u->max;
                  self->since_poll_ = 0;
                  const bool full = is_full(*u, was_full);
                  if (full != self->full_.exchange(full)) {
                    if (full)
                      spdlog::warn(
                          "Redis is nearly full ({} of maxmemory {} bytes): Bellhop answers "
                          "new messages 503 redis_full until AI engines have taken enough of "
                          "the queue, or maxmemory is raised (redis.embedded.maxmemory)",
                          u->used, u->max);
                    else
                      spdlog::info("Redis has room again ({} of maxmemory {} bytes)", u->used,
                                   u->max);
                  }
                }
                self->schedule();
              });
}

}  // namespace bellhop::gateway
