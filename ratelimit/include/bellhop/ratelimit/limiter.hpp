#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"

namespace bellhop::ratelimit {

enum class algorithm { fixed_window, sliding_window, gcra };
std::string_view to_string(algorithm a) noexcept;
std::optional<algorithm> parse_algorithm(std::string_view s) noexcept;

// What a check does when Redis cannot decide (down, timed out, refused the script): fail open
// (allow) or closed (refuse). Config `"fail": "open" | "closed"`.
enum class failure_mode { open, closed };

// A named limit (config `ratelimit.policies`): `limit` units per `window_ms`.
//  fixed_window    at most `limit` in each window aligned to multiples of window_ms
//  sliding_window  at most `limit` in any window_ms (exact; memory O(limit) per subject)
//  gcra            a bucket of `burst` units refilled at limit / window_ms (0 = limit)
struct policy {
  std::string name;
  ratelimit::algorithm algorithm = algorithm::fixed_window;
  std::int64_t limit = 0;
  std::int64_t window_ms = 0;
  std::int64_t burst = 0;
  failure_mode fail = failure_mode::closed;
};
// Why a policy cannot be used ("" if it can), for config errors.
std::string validate(const policy& p);

// One policy applied to one subject (the part after the policy in ratelimit:<policy>:<subject>).
struct limit_key {
  const policy* applies = nullptr;  // must outlive the check
  std::string subject;
};

// The outcome for one limit_key of a check.
struct verdict {
  bool allowed = false;
  std::int64_t remaining = 0;       // units left after this check
  std::int64_t retry_after_ms = 0;  // when refused: until the cost fits; -1: it never will
  std::int64_t reset_ms = 0;        // until the limit is back to full
};

struct decision {
  bool allowed = false;
  // Redis did not decide; `allowed` follows the policies' failure modes (allowed only if every
  // policy of the check fails open). `error` says what happened.
  bool degraded = false;
  std::string error;
  // Of the policy that binds: when refused, the refusing one with the longest retry_after;
  // when allowed, the one with the fewest remaining. For RateLimit-* headers.
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  std::int64_t retry_after_ms = 0;
  std::int64_t reset_ms = 0;
  std::int64_t redis_time_ms = 0;    // the clock the check used (0 when degraded)
  std::vector<verdict> verdicts;     // one per limit_key, in order (empty when degraded)
};

// Counts per policy, for metrics.
struct policy_stats {
  std::uint64_t allowed = 0, denied = 0, failed_open = 0, failed_closed = 0;
};

// Rate limits kept in Redis by one Lua script (lua/check.lua, loaded once, called by EVALSHA
// with the broker's NOSCRIPT recovery), so they hold across every process sharing the Redis.
// Checks that arrive together share one script call (a group commit, as the ingest does): while
// fewer than `max_in_flight` calls are outstanding, a check leaves as soon as the handler that
// made it returns (a post to its executor), with the checks that handler made after it, so a
// lone check costs one round trip and a burst one call; otherwise it waits for the next call,
// which leaves as soon as a call returns and takes everything waiting, up to `max_decisions`
// checks and `max_keys` keys.
// Each check stays one decision: atomic, all-or-none across its own keys, applied in the order
// the checks were made; one that Redis cannot take (its state's key of another type) is
// degraded, and the others of its call are decided.
// Thread-safe; one per process is enough. Checks still in flight or waiting when it is
// destroyed complete normally (they hold what they need; the broker must outlive them).
class limiter {
 public:
  using handler = std::function<void(decision)>;
  struct limits {
    std::size_t max_in_flight = 3;
    // Bound one call's time in Redis (0.5-1 ms at these sizes): other clients wait that long at
    // most. A check with more keys than max_keys goes alone.
    std::size_t max_decisions = 256;
    std::size_t max_keys = 512;
  };

  limiter(broker::broker& redis, contract::key_space keys);
  limiter(broker::broker& redis, contract::key_space keys, limits lim);
  ~limiter();

  // Consumes `cost` from every key, or from none when any refuses; `done` runs on `ex`. Many
  // checks may be outstanding at once; those made together go to Redis in one call.
  void check(const std::vector<limit_key>& keys, std::int64_t cost,
             boost::asio::any_io_executor ex, handler done);

  std::map<std::string, policy_stats> stats() const;
  std::uint64_t script_errors() const noexcept;
  // Script calls made (each carries one or more checks), for tests and benchmarks.
  std::uint64_t calls() const noexcept;

  // Tests only: decide at these times (ms) instead of Redis's TIME (read when a call leaves, so
  // the checks of one call share it). Set before checks run.
  void set_test_clock(std::function<std::int64_t()> now_ms);

  // Counts a decision of `p` taken by another script (the ingest's, which decides the inbound
  // API's limit with this library's algorithms): allowed or denied, as check counts its own.
  void count(const policy& p, bool allowed);

 private:
  class state;  // counters, warnings and the checks waiting, shared with the calls in flight

  std::shared_ptr<state> state_;
};

}  // namespace bellhop::ratelimit
