#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace bellhop::gateway {

class http_session;

// Knows every open HTTP session of a server, so shutdown can reach them and tell when the last
// one has gone (an upgraded connection has left its session: its own service closes it).
// Thread-safe.
class connection_tracker {
 public:
  explicit connection_tracker(boost::asio::io_context& ioc);

  // An id for the new connection; nullopt once shutdown has begun.
  std::optional<std::uint64_t> add(std::weak_ptr<http_session> session);
  void remove(std::uint64_t id);
  std::size_t active() const { return active_.load(std::memory_order_relaxed); }
  bool shutting_down() const;

  // Asks every connection to finish; `done` is posted to the io_context when none is left.
  void begin_shutdown(std::function<void()> done);

 private:
  boost::asio::io_context& ioc_;
  std::atomic<std::size_t> active_{0};
  mutable std::mutex mutex_;
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, std::weak_ptr<http_session>> sessions_;
  bool shutting_down_ = false;
  std::vector<std::function<void()>> done_;
};

}  // namespace bellhop::gateway
