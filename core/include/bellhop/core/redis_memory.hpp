#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "bellhop/broker/broker.hpp"

namespace bellhop::gateway {

// Watches how full Redis is (INFO memory, every `interval`), so Bellhop stops taking new data at
// `refuse_ratio` of maxmemory. Redis itself (noeviction) refuses writes only at 100%, and then
// refuses an AI engine's take (BLMOVE) and heartbeat (SET) as well: the engines could no longer
// drain the queue, which is what frees memory. The headroom keeps them working.
class redis_memory : public std::enable_shared_from_this<redis_memory> {
 public:
  static constexpr double refuse_ratio = 0.9;
  // Once full, Bellhop refuses until Redis is below this: memory that comes and goes with the
  // commands running (their buffers) must not make new messages alternate between 202 and 503
  // while the engines have not taken anything yet.
  static constexpr double resume_ratio = 0.85;

  redis_memory(broker::broker& redis, boost::asio::any_io_executor ex,
               std::chrono::milliseconds interval);

  void start();  // polls until stop()
  void stop();

  // used_memory, plus what was stored since the last poll, >= refuse_ratio * maxmemory, or
  // >= resume_ratio * maxmemory when Bellhop was refusing at the last poll (never with no
  // maxmemory).
  bool full() const noexcept {
    const auto max = max_.load(std::memory_order_relaxed);
    return max > 0 && is_full({used_.load(std::memory_order_relaxed) +
                                   since_poll_.load(std::memory_order_relaxed),
                               max},
                              full_.load(std::memory_order_relaxed));
  }
  // `bytes` were stored: counted until the next poll sees them, so a burst between two polls
  // cannot run past the headroom.
  void note_stored(std::uint64_t bytes) noexcept {
    since_poll_.fetch_add(bytes, std::memory_order_relaxed);
  }
  std::uint64_t used_bytes() const noexcept { return used_.load(std::memory_order_relaxed); }
  std::uint64_t max_bytes() const noexcept { return max_.load(std::memory_order_relaxed); }

  struct usage {
    std::uint64_t used = 0;
    std::uint64_t max = 0;  // 0: no limit
  };
  // used_memory and maxmemory of an INFO memory reply; nullopt when either is missing.
  static std::optional<usage> parse_info(std::string_view info);
  // Whether Redis counts as full at `u`, given whether it did before (`was_full`): from
  // refuse_ratio of maxmemory, and once full until below resume_ratio.
  static bool is_full(usage u, bool was_full) noexcept;

 private:
  void schedule();
  void poll();

  broker::broker& redis_;
  boost::asio::any_io_executor ex_;
  const std::chrono::milliseconds interval_;
  boost::asio::steady_timer timer_;
  std::atomic<bool> stopped_{false};
  std::atomic<bool> full_{false};  // refusing, as of the last poll
  std::atomic<std::uint64_t> since_poll_{0};
  std::atomic<std::uint64_t> used_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace bellhop::gateway
