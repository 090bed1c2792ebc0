#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"

namespace bellhop::gateway {

// Whether each channel account's webhooks and sends work, for the admin page
// (docs/console.md, "Admin API"): the last success and the last failure of each, with a short
// reason, in the hash account_health:<channel> (docs/redis-keys.md). Written at most once per
// second per account, what and outcome in a process, one HSET without waiting for its answer:
// the webhooks and sends that call it do not wait or pay for it. Thread-safe.
class account_health {
 public:
  enum class what { webhook, send };
  // What of a reason is kept: never a secret or message content (callers pass codes and the
  // providers' short error text).
  static constexpr std::size_t max_error_bytes = 200;

  explicit account_health(const contract::key_space& keys);

  void ok(broker::broker& redis, boost::asio::any_io_executor ex, std::string_view channel,
          std::string_view account, what w);
  void failed(broker::broker& redis, boost::asio::any_io_executor ex, std::string_view channel,
              std::string_view account, what w, std::string_view error);

  // The fields of an account in the hash: "<account>:<what>_ok_at", "…_error_at" (epoch ms)
  // and "…_error".
  static std::string field(std::string_view account, what w, std::string_view suffix);

 private:
  // Whether this (channel, account, what, outcome) was not written in the last second; notes it.
  bool due(std::string key, std::int64_t now_ms);

  const contract::key_space& keys_;
  std::mutex mu_;
  std::map<std::string, std::int64_t> last_;  // bounded: cleared past 4096 entries
};

// The per-minute message counts (stats:minute:<epoch minute>, fields "in" and "out"): the
// admin page's chart of the last hour.
inline constexpr std::int64_t minute_counts_ttl_s = 7200;
std::int64_t epoch_minute(std::chrono::system_clock::time_point t);
// Adds `n` to `field` of the current minute's hash (HINCRBY, and EXPIRE when that created it;
// nothing awaited): one call per ingest batch, not per message.
void count_this_minute(broker::broker& redis, const contract::key_space& keys,
                       std::string_view field, std::int64_t n, boost::asio::any_io_executor ex);

}  // namespace bellhop::gateway
