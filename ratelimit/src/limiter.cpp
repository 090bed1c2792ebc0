#include "bellhop/ratelimit/limiter.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "ratelimit_lua.hpp"

namespace bellhop::ratelimit {

class limiter::state {
 public:
  struct counters {
    std::atomic<std::uint64_t> allowed{0}, denied{0}, failed_open{0}, failed_closed{0};
  };
  counters& counters_for(const std::string& policy);
  void degrade(const std::vector<const policy*>& policies, std::string why, decision& d);
  void decide(const std::vector<const policy*>& policies, const broker::reply& r, decision& d);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<counters>, std::less<>> counters_;
  std::atomic<std::uint64_t> script_errors_{0};
  std::atomic<std::int64_t> last_warning_{0};  // steady clock ns of the last failure warning
};

limiter::limiter(broker::broker& redis, contract::key_space keys)
    : redis_(redis),
      keys_(std::move(keys)),
      script_(broker::script::make("ratelimit_check", std::string(lua::check))),
      state_(std::make_shared<state>()) {}

limiter::~limiter() = default;

std::uint64_t limiter::script_errors() const noexcept { return state_->script_errors_.load(); }

limiter::state::counters& limiter::state::counters_for(const std::string& policy) {
  std::lock_guard lock(mu_);
  auto it = counters_.find(policy);
  if (it == counters_.end()) it = counters_.emplace(policy, std::make_unique<counters>()).first;
  return *it->second;
}

std::map<std::string, policy_stats> limiter::stats() const {
  std::lock_guard lock(state_->mu_);
  std::map<std::string, policy_stats> out;
  for (const auto& [name, c] : state_->counters_)
    out[name] = {c->allowed.load(), c->denied.load(), c->failed_open.load(),
                 c->failed_closed.load()};
  return out;
}

void limiter::state::degrade(const std::vector<const policy*>& policies, std::string why, decision& d) {
  d.degraded = true;
  d.allowed = true;
  for (const auto* p : policies) d.allowed = d.allowed && p->fail == failure_mode::open;
  for (const auto* p : policies) {
    auto& c = counters_for(p->name);
    (d.allowed ? c.failed_open : c.failed_closed).fetch_add(1, std::memory_order_relaxed);
  }
  if (!policies.empty()) d.limit = policies.front()->limit;
  d.retry_after_ms = d.allowed ? 0 : 1000;
  // Warned about at most every 10 s, not per request.
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto last = last_warning_.load(std::memory_order_relaxed);
  if ((last == 0 || now - last >= std::chrono::nanoseconds(std::chrono::seconds(10)).count()) &&
      last_warning_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    spdlog::warn("rate limit: Redis could not decide ({}); each policy fails open or closed as "
                 "configured (logged at most every 10 s)",
                 why);
  }
  d.error = std::move(why);
}

void limiter::state::decide(const std::vector<const policy*>& policies, const broker::reply& r,
                            decision& d) {
  const auto& e = r.elements();
  const bool well_formed =
      e.size() == 2 + 4 * policies.size() &&
      std::all_of(e.begin(), e.end(), [](const broker::reply& x) { return x.is_integer(); });
  if (!well_formed) {
    script_errors_.fetch_add(1, std::memory_order_relaxed);
    degrade(policies, "unexpected reply " + r.to_string(), d);
    return;
  }
  d.allowed = e[0].integer() == 1;
  d.redis_time_ms = e[1].integer();
  d.verdicts.reserve(policies.size());
  for (std::size_t i = 0; i < policies.size(); ++i) {
    d.verdicts.push_back({e[2 + 4 * i].integer() == 1, e[3 + 4 * i].integer(),
                          e[4 + 4 * i].integer(), e[5 + 4 * i].integer()});
  }
  // The binding policy: refused, the longest wait (-1, never, is longest); allowed, the
  // fewest left.
  std::size_t bound = policies.size();
  for (std::size_t i = 0; i < policies.size(); ++i) {
    const auto& v = d.verdicts[i];
    auto& c = counters_for(policies[i]->name);
    if (d.allowed) {
      c.allowed.fetch_add(1, std::memory_order_relaxed);
      if (bound == policies.size() || v.remaining < d.verdicts[bound].remaining) bound = i;
    } else if (!v.allowed) {
      c.denied.fetch_add(1, std::memory_order_relaxed);
      const auto wait = v.retry_after_ms < 0 ? INT64_MAX : v.retry_after_ms;
      const auto bound_wait = bound == policies.size()          ? -1
                              : d.verdicts[bound].retry_after_ms < 0 ? INT64_MAX
                                                                     : d.verdicts[bound].retry_after_ms;
      if (wait > bound_wait) bound = i;
    }
  }
  if (bound == policies.size()) bound = 0;  // (the script never refuses without a refusal)
  const auto& v = d.verdicts[bound];
  d.limit = policies[bound]->limit;
  d.remaining = v.remaining;
  d.retry_after_ms = v.retry_after_ms;
  d.reset_ms = v.reset_ms;
}

void limiter::check(const std::vector<limit_key>& keys, std::int64_t cost,
                    boost::asio::any_io_executor ex, handler done) {
  std::vector<const policy*> policies;
  std::vector<std::string> redis_keys;
  std::vector<std::string> args;
  policies.reserve(keys.size());
  redis_keys.reserve(keys.size());
  args.reserve(2 + 4 * keys.size());
  args.push_back(std::to_string(cost < 0 ? 0 : cost));
  args.push_back(test_clock_ ? std::to_string(test_clock_()) : std::string());
  for (const auto& k : keys) {
    if (!k.applies) continue;
    const auto& p = *k.applies;
    policies.push_back(&p);
    redis_keys.push_back(keys_.ratelimit(p.name, k.subject));
    args.emplace_back(to_string(p.algorithm));
    args.push_back(std::to_string(p.limit));
    args.push_back(std::to_string(p.window_ms));
    args.push_back(std::to_string(p.burst > 0 ? p.burst : p.limit));
  }
  if (policies.empty()) {  // nothing limits: allowed without asking Redis
    decision d;
    d.allowed = true;
    boost::asio::post(ex, [done = std::move(done), d = std::move(d)]() mutable { done(std::move(d)); });
    return;
  }
  redis_.eval(script_, std::move(redis_keys), std::move(args), ex,
              [st = state_, policies = std::move(policies), done = std::move(done)](
                  boost::system::error_code ec, broker::reply r) {
                if (ec || !r.is_array()) {
                  if (ec == broker::errc::redis_error || (!ec && !r.is_array()))
                    st->script_errors_.fetch_add(1, std::memory_order_relaxed);
                  decision d;
                  st->degrade(policies, ec ? ec.message() + (r.is_error() ? ": " + r.str() : "")
                                           : "unexpected reply " + r.to_string(),
                              d);
                  done(std::move(d));
                  return;
                }
                decision d;
                st->decide(policies, r, d);
                done(std::move(d));
              });
}

void limiter::count(const policy& p, bool allowed) {
  auto& c = state_->counters_for(p.name);
  (allowed ? c.allowed : c.denied).fetch_add(1, std::memory_order_relaxed);
}

}  // namespace bellhop::ratelimit
