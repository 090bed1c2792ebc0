// The rate-limit script and library against a real redis-server: each algorithm's bounds with
// an explicit clock (deterministic), all-or-none across policies, several connections on the
// real clock, script and server loss, and what happens when Redis cannot decide.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <thread>

#include "bellhop/ratelimit/limiter.hpp"
#include "support/io_thread.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
using ratelimit::algorithm;
using ratelimit::decision;
using ratelimit::limit_key;
using ratelimit::policy;

policy make_policy(std::string name, algorithm a, std::int64_t limit, std::int64_t window_ms,
                   std::int64_t burst = 0) {
  policy p;
  p.name = std::move(name);
  p.algorithm = a;
  p.limit = limit;
  p.window_ms = window_ms;
  p.burst = burst;
  return p;
}

class Limits : public ::testing::Test {
 protected:
  Limits() : redis_broker_(fast_broker_options(redis_.tcp_endpoint())), limits_(redis_broker_, broker::key_space()) {
    redis_broker_.start();
    limits_.set_test_clock([this] { return now_.load(); });
  }
  ~Limits() override { redis_broker_.stop(); }

  decision check(const std::vector<limit_key>& keys, std::int64_t cost = 1) {
    return check_with(limits_, keys, cost);
  }
  decision check_with(ratelimit::limiter& l, const std::vector<limit_key>& keys,
                      std::int64_t cost = 1) {
    std::promise<decision> p;
    l.check(keys, cost, io_.executor(), [&p](decision d) { p.set_value(std::move(d)); });
    return p.get_future().get();
  }
  decision one(const policy& p, std::int64_t cost = 1, const std::string& subject = "s") {
    return check({{&p, subject}}, cost);
  }

  redis_server redis_;
  io_thread io_;
  broker::broker redis_broker_;
  ratelimit::limiter limits_;
  std::atomic<std::int64_t> now_{1'000'000'000};  // ms; a multiple of every window used
};

TEST_F(Limits, FixedWindowAdmitsExactlyLimitPerWindowAndSaysWhenTheNextOpens) {
  const auto p = make_policy("fw", algorithm::fixed_window, 3, 1000);
  now_ += 100;
  for (int i = 0; i < 3; ++i) {
    auto d = one(p);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_FALSE(d.degraded);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.limit, 3);
    EXPECT_EQ(d.reset_ms, 900);
  }
  auto refused = one(p);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_ms, 900);
  EXPECT_EQ(refused.reset_ms, 900);
  now_ += 899;
  EXPECT_FALSE(one(p).allowed) << "still the same window";
  now_ += 1;
  auto next = one(p, 2);
  EXPECT_TRUE(next.allowed) << "a new window";
  EXPECT_EQ(next.remaining, 1) << "cost 2 consumed two";
  EXPECT_FALSE(one(p, 2).allowed) << "2 do not fit in the 1 left";
  EXPECT_TRUE(one(p, 1).allowed);
  auto never = one(p, 4);
  EXPECT_FALSE(never.allowed);
  EXPECT_EQ(never.retry_after_ms, -1) << "cost above the limit never fits";
  EXPECT_EQ(redis_.cli("HGET ratelimit:fw:s n"), "3");
}

TEST_F(Limits, SlidingWindowNeverAdmitsMoreThanLimitInAnyWindowAndItsRetryAfterIsExact) {
  constexpr std::int64_t limit = 5, window = 1000;
  const auto p = make_policy("sw", algorithm::sliding_window, limit, window);
  std::vector<std::int64_t> admitted;
  // Bursts at uneven times over several windows: 1-3 checks every 70 ms.
  for (int step = 0; step < 60; ++step) {
    now_ += 70;
    for (int k = 0; k <= step % 3; ++k) {
      if (one(p).allowed) admitted.push_back(now_.load());
    }
  }
  ASSERT_GT(admitted.size(), 10u);
  for (std::size_t i = 0; i < admitted.size(); ++i) {
    // Admitted in (t - window, t] for every admitted t.
    const auto in_window = std::count_if(admitted.begin(), admitted.end(), [&](std::int64_t t) {
      return t > admitted[i] - window && t <= admitted[i];
    });
    ASSERT_LE(in_window, limit) << "at " << admitted[i];
  }
  // Full now: the retry-after is when the oldest unit leaves, to the millisecond.
  for (int i = 0; i < 10 && one(p).allowed; ++i) {
  }
  auto refused = one(p);
  ASSERT_FALSE(refused.allowed);
  ASSERT_GT(refused.retry_after_ms, 0);
  const auto retry = refused.retry_after_ms;
  now_ += retry - 1;
  EXPECT_FALSE(one(p).allowed) << "1 ms early (refused, so nothing consumed)";
  now_ += 1;
  EXPECT_TRUE(one(p).allowed) << "exactly at retry_after";
}

TEST_F(Limits, GcraAdmitsTheBurstThenNeverMoreThanBurstPlusRateTimesElapsed) {
  constexpr std::int64_t limit = 10, window = 1000, burst = 4;  // one unit per 100 ms
  const auto p = make_policy("g", algorithm::gcra, limit, window, burst);
  for (int i = 0; i < burst; ++i) {
    auto d = one(p);
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.remaining, burst - 1 - i);
  }
  auto refused = one(p);
  ASSERT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 100);
  EXPECT_EQ(refused.reset_ms, 400) << "the bucket is full again after 4 intervals";
  now_ += 99;
  EXPECT_FALSE(one(p).allowed);
  now_ += 1;
  EXPECT_TRUE(one(p).allowed);

  // Hammer at uneven times and check every span [a, b] of admissions.
  std::vector<std::int64_t> admitted;
  const auto start = now_.load();
  for (int step = 0; step < 200; ++step) {
    now_ += 7 + step % 31;
    for (int k = 0; k < 1 + step % 4; ++k)
      if (one(p).allowed) admitted.push_back(now_.load());
  }
  ASSERT_GT(admitted.size(), 20u);
  for (std::size_t a = 0; a < admitted.size(); ++a) {
    for (std::size_t b = a; b < admitted.size(); ++b) {
      const double elapsed = static_cast<double>(admitted[b] - admitted[a]);
      ASSERT_LE(static_cast<double>(b - a + 1), burst + limit * elapsed / window + 1e-9)
          << "span " << admitted[a] - start << ".." << admitted[b] - start;
    }
  }
  EXPECT_EQ(one(p, burst + 1).retry_after_ms, -1) << "more than the bucket never fits";
}

TEST_F(Limits, ACheckRefusedByOnePolicyConsumesFromNone) {
  const auto sender = make_policy("sender", algorithm::gcra, 10, 1000, 5);
  const auto pair = make_policy("pair", algorithm::sliding_window, 2, 60000);
  const auto daily = make_policy("daily", algorithm::fixed_window, 100, 86'400'000);
  const std::vector<limit_key> keys = {{&sender, "+4930"}, {&pair, "+4930:+4915"},
                                       {&daily, "hotel-a"}};
  EXPECT_TRUE(check(keys).allowed);
  EXPECT_TRUE(check(keys).allowed);
  auto refused = check(keys);
  ASSERT_FALSE(refused.allowed);
  ASSERT_EQ(refused.verdicts.size(), 3u);
  EXPECT_TRUE(refused.verdicts[0].allowed);
  EXPECT_FALSE(refused.verdicts[1].allowed) << "the pair limit is the one that refuses";
  EXPECT_TRUE(refused.verdicts[2].allowed);
  EXPECT_EQ(refused.limit, 2) << "the binding policy's figures";
  EXPECT_GT(refused.retry_after_ms, 0);
  // The others kept what they had: two consumed each, not three.
  auto look = check({{&sender, "+4930"}, {&daily, "hotel-a"}}, 0);
  EXPECT_EQ(look.verdicts[0].remaining, 3);
  EXPECT_EQ(look.verdicts[1].remaining, 98);
  EXPECT_EQ(redis_.cli("HGET ratelimit:daily:hotel-a n"), "2");
  EXPECT_EQ(redis_.cli("ZCARD ratelimit:pair:+4930:+4915"), "2");
  const auto stats = limits_.stats();
  EXPECT_EQ(stats.at("pair").denied, 1u);
  EXPECT_EQ(stats.at("sender").allowed, 3u) << "two checks and the look";
  EXPECT_EQ(stats.at("sender").denied, 0u) << "it did not refuse";
}

TEST_F(Limits, ScriptFlushAndARedisRestartBetweenChecksDoNotStopDecisions) {
  const auto p = make_policy("fw", algorithm::fixed_window, 100, 1000);
  EXPECT_TRUE(one(p).allowed);
  redis_.cli("SCRIPT FLUSH");
  auto d = one(p);
  EXPECT_TRUE(d.allowed) << d.error;
  EXPECT_FALSE(d.degraded);
  EXPECT_EQ(d.remaining, 98);
  redis_.restart();  // not durable: state and scripts are gone
  EXPECT_TRUE(eventually([&] { return !one(p).degraded; }, 10s));
  EXPECT_EQ(limits_.script_errors(), 0u);
}

TEST_F(Limits, WhenRedisCannotDecideEachPolicyFailsOpenOrClosedAndIsCounted) {
  auto open = make_policy("open", algorithm::gcra, 10, 1000);
  open.fail = ratelimit::failure_mode::open;
  auto closed = make_policy("closed", algorithm::gcra, 10, 1000);
  redis_.stop();
  auto a = one(open);
  EXPECT_TRUE(a.degraded);
  EXPECT_FALSE(a.error.empty());
  EXPECT_TRUE(a.allowed) << "fails open";
  auto b = one(closed);
  EXPECT_TRUE(b.degraded);
  EXPECT_FALSE(b.allowed) << "fails closed";
  EXPECT_GT(b.retry_after_ms, 0);
  auto both = check({{&open, "s"}, {&closed, "s"}});
  EXPECT_FALSE(both.allowed) << "one closed policy is enough to refuse";
  const auto stats = limits_.stats();
  EXPECT_EQ(stats.at("open").failed_open, 1u);
  EXPECT_EQ(stats.at("open").failed_closed, 1u) << "counted with the closed one in `both`";
  EXPECT_EQ(stats.at("closed").failed_closed, 2u);
  redis_.start();
}

TEST(LimitsValidation, RefusesWhatTheScriptCannotKeepExact) {
  EXPECT_EQ(ratelimit::validate(make_policy("a", algorithm::gcra, 80, 1000, 80)), "");
  EXPECT_EQ(ratelimit::validate(make_policy("a", algorithm::fixed_window, 80, 60000)), "");
  EXPECT_NE(ratelimit::validate(make_policy("a", algorithm::gcra, 0, 1000)), "");
  EXPECT_NE(ratelimit::validate(make_policy("a", algorithm::gcra, 1, 0)), "");
  EXPECT_NE(ratelimit::validate(make_policy("a", algorithm::fixed_window, 1, 1000, 2)), "");
  EXPECT_NE(ratelimit::validate(make_policy("a", algorithm::sliding_window, 100'001, 1000)), "");
}

// Several processes share one Redis: four connections of their own, on Redis's real clock,
// hammering one key with 100 per second for 5 s.
TEST(LimitsAcrossConnections, FourBrokersHammeringOneKeyAdmitAtMostTheLimitPerWindowAndNearlyAll) {
  redis_server redis;
  const auto p = make_policy("shared", algorithm::fixed_window, 100, 1000);
  constexpr int brokers = 4, in_flight = 32;
  std::mutex mu;
  std::map<std::int64_t, int> allowed_per_window;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  const auto end = std::chrono::steady_clock::now() + 5s;
  for (int b = 0; b < brokers; ++b) {
    threads.emplace_back([&] {
      io_thread io;
      broker::broker br(fast_broker_options(redis.tcp_endpoint()));
      br.start();
      ratelimit::limiter l(br, broker::key_space());
      std::atomic<int> outstanding{0};
      std::function<void()> send = [&] {
        ++outstanding;
        l.check({{&p, "key"}}, 1, io.executor(), [&](decision d) {
          if (d.degraded) ++errors;
          if (d.allowed && !d.degraded) {
            std::lock_guard lock(mu);
            ++allowed_per_window[d.redis_time_ms / 1000];
          }
          if (std::chrono::steady_clock::now() < end) send();
          --outstanding;
        });
      };
      for (int i = 0; i < in_flight; ++i) boost::asio::post(io.executor(), send);
      std::this_thread::sleep_until(end);
      while (outstanding.load() > 0) std::this_thread::sleep_for(10ms);
      io.drain();
      br.stop();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  ASSERT_GE(allowed_per_window.size(), 5u);
  int total = 0;
  for (const auto& [window, n] : allowed_per_window) {
    EXPECT_LE(n, 100) << "window " << window;
    total += n;
  }
  // The first and last windows are partly outside the 5 s; the full ones are full.
  int full = 0, full_total = 0;
  for (auto it = std::next(allowed_per_window.begin()); it != std::prev(allowed_per_window.end());
       ++it) {
    ++full;
    full_total += it->second;
  }
  EXPECT_GE(full_total, 0.95 * 100 * full) << "total " << total;
}

}  // namespace
}  // namespace bellhop::test
