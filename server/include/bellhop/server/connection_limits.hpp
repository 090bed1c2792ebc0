#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "bellhop/core/metrics.hpp"

namespace bellhop::gateway {

// Counts open connections against a cap for all of them and a cap per client (a client_key).
// A connection holds a slot for as long as it is open, whatever protocol it ends up speaking
// (an upgraded WebSocket keeps the slot of its HTTP connection). Thread-safe; slots keep the
// counts alive, so they may outlive whoever made them.
class connection_limits : public std::enable_shared_from_this<connection_limits> {
 public:
  enum class refusal { none, total, per_client };

  // Releases its counts on destruction.
  class slot {
   public:
    ~slot();
    slot(const slot&) = delete;
    slot& operator=(const slot&) = delete;
    const std::string& client() const { return client_; }

   private:
    friend class connection_limits;
    explicit slot(std::shared_ptr<connection_limits> owner) : owner_(std::move(owner)) {}
    std::shared_ptr<connection_limits> owner_;
    std::string client_;  // "" while counted in the total only
  };

  // `open` (may be null) follows the number of slots.
  static std::shared_ptr<connection_limits> make(std::size_t max_total, std::size_t max_per_client,
                                                 gauge* open = nullptr);

  // A slot, counted under `client` too unless it is empty; null (and `why`) when a cap is full.
  std::shared_ptr<slot> acquire(const std::string& client, refusal& why);
  // Counts a slot taken without a client (a trusted proxy's connection) under `client` from now
  // on, e.g. once the request it carries is upgraded to one client's WebSocket. A slot that
  // already has a client keeps it.
  refusal assign(slot& s, const std::string& client);

  std::size_t open() const;
  std::size_t open_for(const std::string& client) const;
  std::size_t max_total() const { return max_total_; }
  std::size_t max_per_client() const { return max_per_client_; }

  // Refusals come in floods: true at most once per 10 s, with how many refusals were not
  // logged since the previous time.
  bool should_warn(std::uint64_t& unlogged);

 private:
  connection_limits(std::size_t max_total, std::size_t max_per_client, gauge* open)
      : max_total_(max_total), max_per_client_(max_per_client), gauge_(open) {}
  void release(const std::string& client);

  const std::size_t max_total_, max_per_client_;
  gauge* const gauge_;
  mutable std::mutex mutex_;
  std::size_t open_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;
  std::atomic<std::int64_t> next_warn_ns_{0};
  std::atomic<std::uint64_t> unlogged_{0};
};

}  // namespace bellhop::gateway
