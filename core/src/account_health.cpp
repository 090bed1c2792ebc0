#include "bellhop/core/account_health.hpp"

#include "bellhop/core/poison.hpp"

namespace bellhop::gateway {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string_view name_of(account_health::what w) {
  return w == account_health::what::webhook ? "webhook" : "send";
}

}  // namespace

account_health::account_health(const contract::key_space& keys) : keys_(keys) {}

std::string account_health::field(std::string_view account, what w, std::string_view suffix) {
  std::string f(account);
  f += ':';
  f += name_of(w);
  f += '_';
  f += suffix;
  return f;
}

bool account_health::due(std::string key, std::int64_t now) {
  std::lock_guard lock(mu_);
  if (last_.size() > 4096) last_.clear();  // accounts are configured: never reached in practice
  auto [it, fresh] = last_.try_emplace(std::move(key), now);
  if (fresh) return true;
  if (now - it->second < 1000) return false;
  it->second = now;
  return true;
}

void account_health::ok(broker::broker& redis, boost::asio::any_io_executor ex,
                        std::string_view channel, std::string_view account, what w) {
  const auto now = now_ms();
  std::string key = keys_.account_health(channel);
  if (!due(key + '\n' + std::string(account) + '\n' + std::string(name_of(w)) + "\nok", now))
    return;
  redis.post({"HSET", std::move(key), field(account, w, "ok_at"), std::to_string(now)},
             std::move(ex), [](boost::system::error_code, broker::reply) {});
}

void account_health::failed(broker::broker& redis, boost::asio::any_io_executor ex,
                            std::string_view channel, std::string_view account, what w,
                            std::string_view error) {
  const auto now = now_ms();
  std::string key = keys_.account_health(channel);
  if (!due(key + '\n' + std::string(account) + '\n' + std::string(name_of(w)) + "\nerror", now))
    return;
  redis.post({"HSET", std::move(key), field(account, w, "error_at"), std::to_string(now),
              field(account, w, "error"), valid_utf8(error.substr(0, max_error_bytes))},
             std::move(ex), [](boost::system::error_code, broker::reply) {});
}

std::int64_t epoch_minute(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count();
}

void count_this_minute(broker::broker& redis, const contract::key_space& keys,
                       std::string_view field, std::int64_t n, boost::asio::any_io_executor ex) {
  if (n <= 0) return;
  std::string key = keys.stats_minute(epoch_minute(std::chrono::system_clock::now()));
  // The expiry is set by whoever created the minute's hash (its count is then exactly `n`):
  // one command per call the other 59 seconds. A lost EXPIRE leaves one small hash behind.
  redis.post({"HINCRBY", key, std::string(field), std::to_string(n)}, ex,
             [&redis, key, n, ex](boost::system::error_code ec, broker::reply r) {
               if (ec || !r.is_integer() || r.integer() != n) return;
               redis.post({"EXPIRE", key, std::to_string(minute_counts_ttl_s)}, ex,
                          [](boost::system::error_code, broker::reply) {});
             });
}

}  // namespace bellhop::gateway
