#include "bellhop/ratelimit/limiter.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <climits>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>

#include "bellhop/broker/group_commit.hpp"
#include "ratelimit_lua.hpp"

namespace bellhop::ratelimit {

class limiter::state : public std::enable_shared_from_this<limiter::state> {
 public:
  struct counters {
    std::atomic<std::uint64_t> allowed{0}, denied{0}, failed_open{0}, failed_closed{0};
  };
  // One check waiting for, or riding in, a script call.
  struct pending {
    std::vector<const policy*> policies;
    std::vector<std::string> keys;  // one per policy
    std::string cost;
    boost::asio::any_io_executor ex;
    handler done;
  };
  using batch = std::vector<pending>;

  state(broker::broker& redis, contract::key_space keys, limits lim)
      : redis_(redis),
        keys_(std::move(keys)),
        limits_(lim),
        script_(broker::script::make("ratelimit_check", std::string(lua::check))) {}

  counters& counters_for(const std::string& policy);
  void degrade(const std::vector<const policy*>& policies, std::string why, decision& d);
  void decide(const std::vector<const policy*>& policies, std::span<const broker::reply> e,
              std::int64_t now, decision& d);

  void submit(pending p);
  batch take_locked();
  void send_locked(batch b);  // under batch_mu_: calls reach the broker in order
  void finish(batch& b, boost::system::error_code ec, const broker::reply& r,
              const boost::asio::any_io_executor& here);

  broker::broker& redis_;
  const contract::key_space keys_;
  const limits limits_;
  const broker::script script_;
  std::function<std::int64_t()> test_clock_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<counters>, std::less<>> counters_;
  std::atomic<std::uint64_t> script_errors_{0};
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::int64_t> last_warning_{0};  // steady clock ns of the last failure warning

  std::mutex batch_mu_;
  std::deque<pending> waiting_;
  std::size_t in_flight_ = 0;
  bool flush_posted_ = false;  // a flush is posted: checks made meanwhile go with it
};

namespace {

// What a log line and decision.error take of a text Redis sent (a reply may hold a whole call).
std::string bounded(std::string text) {
  constexpr std::size_t most = 200;
  if (text.size() > most) {
    text.resize(most);
    text += "...";
  }
  return text;
}

}  // namespace

limiter::limiter(broker::broker& redis, contract::key_space keys)
    : limiter(redis, std::move(keys), limits{}) {}

limiter::limiter(broker::broker& redis, contract::key_space keys, limits lim)
    : state_(std::make_shared<state>(redis, std::move(keys), lim)) {}

limiter::~limiter() = default;

void limiter::set_test_clock(std::function<std::int64_t()> now_ms) {
  state_->test_clock_ = std::move(now_ms);
}

std::uint64_t limiter::calls() const noexcept {
  return state_->calls_.load();
}

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

// `e` is one decision's part of the reply: allowed, then 4 integers per policy.
void limiter::state::decide(const std::vector<const policy*>& policies,
                            std::span<const broker::reply> e, std::int64_t now, decision& d) {
  const bool well_formed =
      e.size() == 1 + 4 * policies.size() &&
      std::all_of(e.begin(), e.end(), [](const broker::reply& x) { return x.is_integer(); });
  if (!well_formed) {
    script_errors_.fetch_add(1, std::memory_order_relaxed);
    std::string got;
    for (const auto& x : e) got += (got.empty() ? "" : " ") + x.to_string();
    degrade(policies, bounded("unexpected reply " + got), d);
    return;
  }
  d.allowed = e[0].integer() == 1;
  d.redis_time_ms = now;
  d.verdicts.reserve(policies.size());
  for (std::size_t i = 0; i < policies.size(); ++i) {
    d.verdicts.push_back({e[1 + 4 * i].integer() == 1, e[2 + 4 * i].integer(),
                          e[3 + 4 * i].integer(), e[4 + 4 * i].integer()});
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
  state::pending p;
  p.policies.reserve(keys.size());
  p.keys.reserve(keys.size());
  for (const auto& k : keys) {
    if (!k.applies) continue;
    p.policies.push_back(k.applies);
    p.keys.push_back(state_->keys_.ratelimit(k.applies->name, k.subject));
  }
  if (p.policies.empty()) {  // nothing limits: allowed without asking Redis
    decision d;
    d.allowed = true;
    boost::asio::post(ex, [done = std::move(done), d = std::move(d)]() mutable { done(std::move(d)); });
    return;
  }
  p.cost = std::to_string(cost < 0 ? 0 : cost);
  p.ex = std::move(ex);
  p.done = std::move(done);
  state_->submit(std::move(p));
}

void limiter::state::submit(pending p) {
  std::lock_guard lock(batch_mu_);
  // Not sent from here but from a handler posted to the caller's executor: the checks its
  // current handler makes after this one (a dispatcher starting a claim's worth of sends) go in
  // the same call, not the first alone.
  if (in_flight_ < limits_.max_in_flight && !flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(p.ex, [self = shared_from_this()] {
      std::lock_guard lock(self->batch_mu_);
      self->flush_posted_ = false;
      while (self->in_flight_ < self->limits_.max_in_flight && !self->waiting_.empty())
        self->send_locked(self->take_locked());
    });
  }
  waiting_.push_back(std::move(p));
}

limiter::state::batch limiter::state::take_locked() {
  batch b;
  std::size_t keys = 0;
  while (!waiting_.empty() && b.size() < limits_.max_decisions) {
    const auto n = waiting_.front().keys.size();
    if (!b.empty() && keys + n > limits_.max_keys) break;  // (a first check always goes)
    keys += n;
    b.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return b;
}

void limiter::state::send_locked(batch b) {
  if (b.empty()) return;
  ++in_flight_;
  calls_.fetch_add(1, std::memory_order_relaxed);
  // The script's layout: the call's policies once (their figures and the start of their keys),
  // then the checks in groups (below), their pairs' policies by index.
  std::vector<const policy*> table;
  std::unordered_map<const policy*, std::string> index;
  std::size_t nkeys = 0;
  for (const auto& p : b) {
    nkeys += p.keys.size();
    for (const auto* pol : p.policies) {
      if (index.try_emplace(pol, std::to_string(table.size() + 1)).second) table.push_back(pol);
    }
  }
  std::vector<std::string> keys;
  std::vector<std::string> args;
  keys.reserve(nkeys);
  args.reserve(2 + 5 * table.size() + 2 * b.size() + nkeys);
  args.push_back(test_clock_ ? std::to_string(test_clock_()) : std::string());
  args.push_back(std::to_string(table.size()));
  for (const auto* pol : table) {
    args.emplace_back(to_string(pol->algorithm));
    args.push_back(std::to_string(pol->limit));
    args.push_back(std::to_string(pol->window_ms));
    args.push_back(std::to_string(pol->burst > 0 ? pol->burst : pol->limit));
    args.push_back(keys_.ratelimit(pol->name, ""));  // what its pairs' keys start with
  }
  // Checks that follow each other with the same cost and policies go as one group: its cost,
  // pairs per check, number of checks and policies once, then every check's keys.
  std::size_t count_at = 0, count = 0;  // the current group's count: where, and how many
  for (std::size_t i = 0; i < b.size(); ++i) {
    auto& p = b[i];
    if (i > 0 && p.cost == b[i - 1].cost && p.policies == b[i - 1].policies) {
      ++count;
    } else {
      if (i > 0) args[count_at] = std::to_string(count);
      args.push_back(p.cost);
      args.push_back(std::to_string(p.policies.size()));
      count_at = args.size();
      count = 1;
      args.emplace_back();
      for (const auto* pol : p.policies) args.push_back(index[pol]);
    }
    for (auto& k : p.keys) keys.push_back(std::move(k));
    p.keys.clear();
  }
  args[count_at] = std::to_string(count);
  auto ex = b.front().ex;
  auto shared = std::make_shared<batch>(std::move(b));
  redis_.eval(
      script_, std::move(keys), std::move(args), ex,
      [self = shared_from_this(), shared, ex](boost::system::error_code ec, broker::reply r) {
        broker::group_commit_returned(self->batch_mu_, self->in_flight_, self->waiting_, *shared,
                                      ec && ec != broker::errc::redis_error,
                                      [&] { self->send_locked(self->take_locked()); });
        self->finish(*shared, ec, r, ex);
      });
}

void limiter::state::finish(batch& b, boost::system::error_code ec, const broker::reply& r,
                            const boost::asio::any_io_executor& here) {
  std::vector<decision> out(b.size());
  const auto& e = r.elements();
  // The reply is flat: now, then per decision one error or its 1 + 4 * pairs integers. Its
  // layout is checked whole before any of it is read as an answer.
  std::vector<std::size_t> at;  // where each decision's part starts
  bool laid_out = !ec && r.is_array() && !e.empty() && e[0].is_integer();
  if (laid_out) {
    at.reserve(b.size());
    std::size_t pos = 1;
    for (std::size_t i = 0; i < b.size() && laid_out; ++i) {
      at.push_back(pos);
      if (pos >= e.size())
        laid_out = false;
      else
        pos += e[pos].is_error() ? 1 : 1 + 4 * b[i].policies.size();
    }
    laid_out = laid_out && pos == e.size();
  }
  if (!laid_out) {
    // The call failed as a whole: each check degrades per its policies, as a lone one would.
    const bool script_error = ec == broker::errc::redis_error || !ec;
    const auto why = bounded(ec ? ec.message() + (r.is_error() ? ": " + r.str() : "")
                                : "unexpected reply " + r.to_string());
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (script_error) script_errors_.fetch_add(1, std::memory_order_relaxed);
      degrade(b[i].policies, why, out[i]);
    }
  } else {
    const auto now = e[0].integer();
    for (std::size_t i = 0; i < b.size(); ++i) {
      const auto& part = e[at[i]];
      if (part.is_error()) {  // Redis could not take this one decision; it consumed nothing
        script_errors_.fetch_add(1, std::memory_order_relaxed);
        if (broker::is_out_of_memory(part.str())) redis_.note_out_of_memory();
        degrade(b[i].policies, bounded("Redis refused the check: " + part.str()), out[i]);
      } else {
        decide(b[i].policies,
               std::span<const broker::reply>(e).subspan(at[i], 1 + 4 * b[i].policies.size()), now,
               out[i]);
      }
    }
  }
  // Each handler on its own executor: those of the executor this runs on at once, the others
  // in one post per executor.
  std::vector<std::size_t> elsewhere;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (b[i].ex != here) elsewhere.push_back(i);
  }
  while (!elsewhere.empty()) {
    auto target = b[elsewhere.front()].ex;
    std::vector<std::pair<handler, decision>> run;
    std::vector<std::size_t> rest;
    for (const auto i : elsewhere) {
      if (b[i].ex == target)
        run.emplace_back(std::move(b[i].done), std::move(out[i]));
      else
        rest.push_back(i);
    }
    boost::asio::post(target, [run = std::move(run)]() mutable {
      for (auto& [done, d] : run) done(std::move(d));
    });
    elsewhere = std::move(rest);
  }
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (b[i].ex == here) b[i].done(std::move(out[i]));
  }
}

void limiter::count(const policy& p, bool allowed) {
  auto& c = state_->counters_for(p.name);
  (allowed ? c.allowed : c.denied).fetch_add(1, std::memory_order_relaxed);
}

}  // namespace bellhop::ratelimit
