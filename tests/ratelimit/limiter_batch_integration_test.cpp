// bellhop_ratelimit's batching against a real redis-server: checks made together share one
// script call, and each is still the decision it would be alone. Concurrent checks on one key
// admit exactly the limit; a concurrent run decides exactly as the same checks one after the
// other; under load there are far fewer EVALSHA calls than checks; inside one call a decision
// refused by one of its keys consumes from none while its neighbours consume; a decision Redis
// cannot take (a key of another type) is degraded alone; Redis lost under a call degrades each
// of its decisions per its own failure mode.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/ratelimit/limiter.hpp"
#include "ratelimit/limiter_test_support.hpp"
#include "support/io_thread.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::ratelimit {
namespace {

using namespace std::chrono_literals;
using test::io_thread;
using test_support::fixed_window_hash;
using test_support::gcra_hash;
using test_support::lcg;
using test_support::make_policy;

// A check made now whose decision is waited for later. The promise is shared with the handler
// so a decision arriving after a timed-out wait has somewhere to go; `on_caller` records
// whether the handler ran on the executor the check was made with.
struct pending_check {
  std::shared_future<decision> decided;
  std::shared_ptr<std::atomic<bool>> on_caller = std::make_shared<std::atomic<bool>>(false);
};

pending_check start(limiter& l, const std::vector<limit_key>& keys, std::int64_t cost,
                    io_thread& io) {
  auto p = std::make_shared<std::promise<decision>>();
  pending_check c;
  c.decided = p->get_future().share();
  l.check(keys, cost, io.executor(), [p, &io, on = c.on_caller](decision d) {
    on->store(io.context().get_executor().running_in_this_thread());
    p->set_value(std::move(d));
  });
  return c;
}

decision wait(const pending_check& c) {
  if (c.decided.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "no decision within 10 s";
    decision none;
    none.degraded = true;
    none.error = "test: no decision";
    return none;
  }
  EXPECT_TRUE(c.on_caller->load()) << "the handler ran on the caller's executor";
  return c.decided.get();
}

std::string describe(const decision& d) {
  std::string s = d.degraded ? "degraded(" + d.error + ")" : d.allowed ? "allowed" : "refused";
  s += " remaining=" + std::to_string(d.remaining) + " retry=" + std::to_string(d.retry_after_ms) +
       " reset=" + std::to_string(d.reset_ms) + " [";
  for (const auto& v : d.verdicts)
    s += (v.allowed ? "+" : "-") + std::to_string(v.remaining) + "/" +
         std::to_string(v.retry_after_ms) + "/" + std::to_string(v.reset_ms) + " ";
  return s + "]";
}

bool same(const decision& a, const decision& b) {
  if (a.degraded != b.degraded || a.allowed != b.allowed || a.limit != b.limit ||
      a.remaining != b.remaining || a.retry_after_ms != b.retry_after_ms ||
      a.reset_ms != b.reset_ms || a.verdicts.size() != b.verdicts.size())
    return false;
  for (std::size_t i = 0; i < a.verdicts.size(); ++i) {
    const auto &x = a.verdicts[i], &y = b.verdicts[i];
    if (x.allowed != y.allowed || x.remaining != y.remaining ||
        x.retry_after_ms != y.retry_after_ms || x.reset_ms != y.reset_ms)
      return false;
  }
  return true;
}

class LimiterBatchTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t epoch_ms = 12 * 86'400'000LL;

  LimiterBatchTest() : broker_(test::fast_broker_options(redis_.tcp_endpoint())) {
    broker_.start();
    EXPECT_TRUE(test::eventually([&] { return broker_.ready(); }, 5s));
  }
  ~LimiterBatchTest() override { broker_.stop(); }

  // A limiter on the test clock (or Redis's own with real_clock).
  std::unique_ptr<limiter> make_limiter(limiter::limits lim = {}, std::string prefix = "",
                                        bool real_clock = false) {
    auto l = std::make_unique<limiter>(broker_, contract::key_space(std::move(prefix)), lim);
    if (!real_clock) l->set_test_clock([this] { return now_.load(); });
    return l;
  }

  // With one call allowed in flight and Redis frozen under a first check, the checks `make`
  // starts wait together and go to Redis in the one call that follows: returns the first.
  pending_check hold_first_call(limiter& l, const std::vector<limit_key>& keys) {
    const auto calls = l.calls();
    redis_.freeze();
    auto first = start(l, keys, 1, io_);
    EXPECT_TRUE(test::eventually([&] { return l.calls() == calls + 1; }, 5s));
    return first;
  }

  test::redis_server redis_;
  io_thread io_;
  broker::broker broker_;
  std::atomic<std::int64_t> now_{epoch_ms};
};

// ---- 1. M concurrent checks against a limit of N ----------------------------------------------

TEST_F(LimiterBatchTest, ManyConcurrentChecksOnOneKeyAdmitExactlyTheLimit) {
  constexpr std::int64_t limit = 50;
  constexpr int threads = 4, per_thread = 100;  // 400 checks for 50 units
  const std::vector<policy> policies = {make_policy("fw", algorithm::fixed_window, limit, 60'000),
                                        make_policy("sw", algorithm::sliding_window, limit, 60'000),
                                        make_policy("gcra", algorithm::gcra, 1, 60'000, limit)};
  auto l = make_limiter();
  std::vector<std::unique_ptr<io_thread>> callers;
  for (int t = 0; t < threads; ++t) callers.push_back(std::make_unique<io_thread>());
  for (const auto& p : policies) {
    SCOPED_TRACE(p.name);
    const auto calls = l->calls();
    std::mutex mu;
    std::vector<pending_check> checks;
    // Every caller thread makes its checks from its own io thread, all at once.
    std::vector<std::future<void>> made;
    for (auto& io : callers) {
      made.push_back(std::async(std::launch::async, [&, io = io.get()] {
        std::promise<void> done;
        boost::asio::post(io->executor(), [&] {
          std::vector<pending_check> mine;
          for (int i = 0; i < per_thread; ++i) mine.push_back(start(*l, {{&p, "one"}}, 1, *io));
          std::lock_guard lock(mu);
          checks.insert(checks.end(), mine.begin(), mine.end());
          done.set_value();
        });
        done.get_future().wait();
      }));
    }
    for (auto& m : made) m.wait();
    std::multiset<std::int64_t> remaining;
    int allowed = 0;
    for (const auto& c : checks) {
      const auto d = wait(c);
      ASSERT_FALSE(d.degraded) << d.error;
      if (d.allowed) {
        ++allowed;
        remaining.insert(d.remaining);
      } else {
        EXPECT_EQ(d.remaining, 0);
        EXPECT_GT(d.retry_after_ms, 0);
      }
    }
    EXPECT_EQ(allowed, limit) << "exactly the limit of " << threads * per_thread << " checks";
    // Each admitted check saw the ones before it: 49, 48, ... 0, once each.
    std::multiset<std::int64_t> expected;
    for (std::int64_t i = 0; i < limit; ++i) expected.insert(i);
    EXPECT_EQ(remaining, expected);
    EXPECT_LT(l->calls() - calls, static_cast<std::uint64_t>(threads * per_thread) / 2)
        << "the checks shared calls";
  }
  EXPECT_EQ(redis_.cli("HGET " + fixed_window_hash("fw", 60'000, now_) + " one"),
            std::to_string(limit));
  EXPECT_EQ(redis_.cli("ZCARD ratelimit:sw:one"), std::to_string(limit));
}

// ---- 2. concurrent = sequential ----------------------------------------------------------------

TEST_F(LimiterBatchTest, ChecksMadeTogetherDecideExactlyAsTheSameChecksOneAfterTheOther) {
  // Three policies over a few subjects, checks of one to three keys and costs 0-3, with time
  // moving on now and then: one limiter gets them one at a time, the other all at once (each
  // round), on keys of their own (two prefixes in one Redis).
  const auto fw = make_policy("fw", algorithm::fixed_window, 7, 1000);
  const auto sw = make_policy("sw", algorithm::sliding_window, 5, 800);
  const auto gc = make_policy("gc", algorithm::gcra, 10, 1000, 4);
  const std::vector<const policy*> all = {&fw, &sw, &gc};
  auto one_by_one = make_limiter({}, "seq:");
  auto together = make_limiter({}, "con:");
  lcg rng{42};
  int checks = 0, refused = 0;
  for (int round = 0; round < 30 && !HasFailure(); ++round) {
    now_ += rng.below(300);
    std::vector<std::vector<limit_key>> keys;
    std::vector<std::int64_t> costs;
    for (int i = 0; i < 40; ++i) {
      std::vector<limit_key> k;
      const auto n = 1 + rng.below(3);
      for (std::int64_t j = 0; j < n; ++j)
        k.push_back(
            {all[static_cast<std::size_t>(rng.below(3))], "s" + std::to_string(rng.below(3))});
      keys.push_back(std::move(k));
      costs.push_back(rng.below(6) == 0 ? rng.below(4) : 1);
    }
    std::vector<decision> expected;
    for (std::size_t i = 0; i < keys.size(); ++i)
      expected.push_back(wait(start(*one_by_one, keys[i], costs[i], io_)));
    // Made by one handler, so they leave together however the threads are scheduled.
    const auto calls = together->calls();
    std::vector<pending_check> made;
    std::promise<void> all_made;
    boost::asio::post(io_.executor(), [&] {
      for (std::size_t i = 0; i < keys.size(); ++i)
        made.push_back(start(*together, keys[i], costs[i], io_));
      all_made.set_value();
    });
    all_made.get_future().wait();
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const auto got = wait(made[i]);
      ASSERT_FALSE(got.degraded) << got.error;
      ASSERT_TRUE(same(got, expected[i]))
          << "round " << round << " check " << i << ": together " << describe(got)
          << ", one by one " << describe(expected[i]);
      ++checks;
      refused += got.allowed ? 0 : 1;
    }
    EXPECT_EQ(together->calls() - calls, 1u) << "round " << round << ": 40 checks in one call";
  }
  EXPECT_GT(refused, checks / 10) << "the limits were reached often enough to matter";
  EXPECT_LT(refused, checks * 9 / 10);
}

// ---- 3. far fewer script calls than checks -----------------------------------------------------

TEST_F(LimiterBatchTest, UnderLoadChecksShareScriptCallsAndALoneCheckIsOneCall) {
  const auto p = make_policy("load", algorithm::fixed_window, 1'000'000, 86'400'000);
  auto l = make_limiter({}, "", /*real_clock*/ true);
  // A lone check: one call, at once (after a first one that loaded the script).
  ASSERT_FALSE(wait(start(*l, {{&p, "k0"}}, 1, io_)).degraded);
  const auto before = redis_.command_calls("evalsha");
  ASSERT_FALSE(wait(start(*l, {{&p, "k0"}}, 1, io_)).degraded);
  EXPECT_EQ(redis_.command_calls("evalsha") - before, 1);

  // A burst: checks one handler makes in a row (a dispatcher starting a claim's sends) go in
  // one call, though no call is in flight when the first is made.
  {
    const auto burst_before = redis_.command_calls("evalsha");
    std::vector<pending_check> burst;
    std::promise<void> made;
    boost::asio::post(io_.executor(), [&] {
      for (int i = 0; i < 50; ++i)
        burst.push_back(start(*l, {{&p, "b" + std::to_string(i)}}, 1, io_));
      made.set_value();
    });
    made.get_future().wait();
    for (const auto& c : burst) ASSERT_FALSE(wait(c).degraded);
    EXPECT_EQ(redis_.command_calls("evalsha") - burst_before, 1) << "50 checks of one handler";
  }

  // Load: 4 caller threads each keep 64 checks outstanding until 20,000 are done.
  constexpr int threads = 4, in_flight = 64, total = 20'000;
  const auto calls_before = redis_.command_calls("evalsha");
  std::vector<std::unique_ptr<io_thread>> callers;
  for (int t = 0; t < threads; ++t) callers.push_back(std::make_unique<io_thread>());
  std::atomic<int> sent{0}, done{0}, degraded{0};
  std::function<void(io_thread*)> next = [&](io_thread* io) {
    const auto n = sent.fetch_add(1);
    if (n >= total) return;
    l->check({{&p, "k" + std::to_string(n % 1000)}}, 1, io->executor(), [&, io](decision d) {
      if (d.degraded) ++degraded;
      ++done;
      next(io);
    });
  };
  for (auto& io : callers)
    for (int i = 0; i < in_flight; ++i)
      boost::asio::post(io->executor(), [&, io = io.get()] { next(io); });
  ASSERT_TRUE(test::eventually([&] { return done.load() == total; }, 60s)) << done.load();
  for (auto& io : callers) io->drain();
  EXPECT_EQ(degraded.load(), 0);
  const auto calls = redis_.command_calls("evalsha") - calls_before;
  EXPECT_LE(calls, total / 10) << calls << " EVALSHA for " << total << " checks";
  EXPECT_GT(calls, 0);
  // Each check consumed once (a day's window: no boundary falls inside the run): k0 twice, the
  // burst's 50 and the load's.
  EXPECT_EQ(redis_.cli("EVAL \"local s = 0 for _, h in ipairs(redis.call('KEYS', "
                       "'ratelimit:load@*')) do for _, v in ipairs(redis.call('HVALS', h)) do "
                       "s = s + v end end return s\" 0"),
            std::to_string(total + 2 + 50));
}

// ---- 4. all-or-none per decision inside one call ------------------------------------------------

TEST_F(LimiterBatchTest, InsideOneCallADecisionRefusedByOneKeyConsumesFromNoneWhileOthersConsume) {
  const auto sender = make_policy("sender", algorithm::gcra, 10, 1000, 5);
  const auto pair = make_policy("pair", algorithm::fixed_window, 2, 60'000);
  const auto daily = make_policy("daily", algorithm::sliding_window, 100, 86'400'000);
  auto l = make_limiter({1, 128, 256});
  // The pair +1 is used up.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(wait(start(*l, {{&pair, "+1"}}, 1, io_)).allowed);

  auto first = hold_first_call(*l, {{&daily, "warm"}});
  const auto calls = l->calls();
  // In one call, in this order:
  auto a = start(*l, {{&sender, "s"}, {&pair, "+1"}, {&daily, "hotel"}}, 1, io_);  // pair refuses
  auto b = start(*l, {{&sender, "s"}, {&pair, "+2"}, {&daily, "hotel"}}, 1, io_);  // consumes
  auto c = start(*l, {{&sender, "s"}, {&pair, "+2"}}, 2, io_);      // +2 has 1 left after b
  auto d = start(*l, {{&sender, "s"}, {&daily, "hotel"}}, 3, io_);  // sees b: 4 left of 5
  redis_.thaw();
  ASSERT_TRUE(wait(first).allowed);
  const auto da = wait(a), db = wait(b), dc = wait(c), dd = wait(d);
  EXPECT_EQ(l->calls(), calls + 1) << "the four went in one call";

  ASSERT_FALSE(da.degraded) << da.error;
  EXPECT_FALSE(da.allowed);
  ASSERT_EQ(da.verdicts.size(), 3u);
  EXPECT_TRUE(da.verdicts[0].allowed);
  EXPECT_FALSE(da.verdicts[1].allowed) << "the pair refused";
  EXPECT_TRUE(da.verdicts[2].allowed);
  EXPECT_EQ(da.verdicts[0].remaining, 4) << describe(da);
  EXPECT_EQ(da.limit, 2) << "the refusing policy binds";

  ASSERT_TRUE(db.allowed) << describe(db);
  EXPECT_EQ(db.verdicts[0].remaining, 4) << "a consumed nothing from the sender";
  EXPECT_EQ(db.verdicts[2].remaining, 99) << "nor from the daily cap";

  ASSERT_FALSE(dc.degraded) << dc.error;
  EXPECT_FALSE(dc.allowed) << "cost 2 does not fit the 1 that b left of +2";
  EXPECT_EQ(dc.verdicts[1].remaining, 1);

  ASSERT_TRUE(dd.allowed) << describe(dd);
  EXPECT_EQ(dd.verdicts[0].remaining, 1) << "the sender's 4 after b, less 3; c took nothing";
  EXPECT_EQ(dd.verdicts[1].remaining, 96);

  const auto pairs = fixed_window_hash("pair", 60'000, now_);
  EXPECT_EQ(redis_.cli("HGET " + pairs + " +1"), "2") << "a did not consume from the pair";
  EXPECT_EQ(redis_.cli("HGET " + pairs + " +2"), "1") << "b did, c did not";
  EXPECT_EQ(redis_.cli("ZCARD ratelimit:daily:hotel"), "4") << "b 1 and d 3";
}

// ---- 5. a broken decision alone
// -------------------------------------------------------------------

TEST_F(LimiterBatchTest, ADecisionRedisCannotTakeIsDegradedAloneAndItsNeighboursAreDecided) {
  const auto closed = make_policy("fw", algorithm::fixed_window, 10, 60'000);
  const auto broken = make_policy("fwb", algorithm::fixed_window, 10, 60'000);
  const auto open = make_policy("open", algorithm::gcra, 10, 1000, 0, failure_mode::open);
  const auto openb = make_policy("openb", algorithm::gcra, 10, 1000, 0, failure_mode::open);
  // Keys of another type than their policies' state: lists where the fixed window "fwb" keeps
  // this window's hash and gcra "openb" this slice's.
  redis_.cli("RPUSH " + fixed_window_hash("fwb", 60'000, now_) + " x");
  redis_.cli("RPUSH " + gcra_hash("openb", 10, 1000, 0, now_) + " x");
  auto l = make_limiter({1, 128, 256});
  auto first = hold_first_call(*l, {{&closed, "warm"}});
  const auto calls = l->calls();
  auto before = start(*l, {{&closed, "ok"}}, 1, io_);
  auto broken_closed = start(*l, {{&closed, "untouched"}, {&broken, "x"}}, 1, io_);
  auto middle = start(*l, {{&closed, "ok"}, {&open, "ok"}}, 1, io_);
  auto broken_open = start(*l, {{&open, "untouched"}, {&openb, "broken"}}, 1, io_);
  auto broken_alone = start(*l, {{&broken, "y"}}, 1, io_);
  auto after = start(*l, {{&closed, "ok"}}, 1, io_);
  redis_.thaw();
  ASSERT_TRUE(wait(first).allowed);
  const auto d1 = wait(before), d2 = wait(broken_closed), d3 = wait(middle), d4 = wait(broken_open),
             d5 = wait(broken_alone), d6 = wait(after);
  EXPECT_EQ(l->calls(), calls + 1) << "the six went in one call";

  for (const auto* d : {&d1, &d3, &d6}) {
    EXPECT_FALSE(d->degraded) << d->error;
    EXPECT_TRUE(d->allowed);
  }
  EXPECT_EQ(d1.remaining, 9);
  EXPECT_EQ(d3.verdicts.at(0).remaining, 8) << "the broken one between consumed nothing";
  EXPECT_EQ(d6.remaining, 7);

  for (const auto* d : {&d2, &d5}) {
    EXPECT_TRUE(d->degraded);
    EXPECT_NE(d->error.find("WRONGTYPE"), std::string::npos) << d->error;
    EXPECT_FALSE(d->allowed) << "fails closed";
    EXPECT_TRUE(d->verdicts.empty());
  }
  EXPECT_TRUE(d4.degraded);
  EXPECT_TRUE(d4.allowed) << "fails open";

  const auto fws = fixed_window_hash("fw", 60'000, now_);
  EXPECT_EQ(redis_.cli("HEXISTS " + fws + " untouched"), "0") << "nothing consumed beside it";
  EXPECT_EQ(redis_.cli("HEXISTS " + gcra_hash("open", 10, 1000, 0, now_) + " untouched"), "0");
  EXPECT_EQ(redis_.cli("HGET " + fws + " ok"), "3");
  EXPECT_EQ(redis_.cli("TYPE " + fixed_window_hash("fwb", 60'000, now_)), "list") << "left alone";
  EXPECT_EQ(l->script_errors(), 3u);
  const auto stats = l->stats();
  // A degraded decision counts once per key.
  EXPECT_EQ(stats.at("fw").failed_closed, 1u);
  EXPECT_EQ(stats.at("fwb").failed_closed, 2u);
  EXPECT_EQ(stats.at("open").failed_open, 1u) << "a key of each policy";
  EXPECT_EQ(stats.at("openb").failed_open, 1u);
  EXPECT_EQ(stats.at("fw").allowed, 4u) << "warm, before, middle, after";
}

// ---- 6. Redis lost under a call
// ------------------------------------------------------------------

TEST_F(LimiterBatchTest, RedisLostUnderACallDegradesEachDecisionPerItsFailureMode) {
  const auto open = make_policy("open", algorithm::gcra, 100, 1000, 0, failure_mode::open);
  const auto closed = make_policy("closed", algorithm::fixed_window, 100, 1000);
  auto l = make_limiter({1, 128, 256});
  // The first call is in flight on a frozen Redis; the rest wait for it.
  auto first = hold_first_call(*l, {{&open, "a"}});
  std::vector<pending_check> waiting;
  for (int i = 0; i < 10; ++i) {
    waiting.push_back(start(*l, {{&open, "a"}}, 1, io_));
    waiting.push_back(start(*l, {{&closed, "a"}}, 1, io_));
    waiting.push_back(start(*l, {{&open, "a"}, {&closed, "b"}}, 1, io_));
  }
  const auto t0 = std::chrono::steady_clock::now();
  redis_.stop();  // killed: the connection drops under the call
  const auto d0 = wait(first);
  EXPECT_TRUE(d0.degraded);
  EXPECT_TRUE(d0.allowed) << "fails open";
  for (std::size_t i = 0; i < waiting.size(); ++i) {
    const auto d = wait(waiting[i]);
    EXPECT_TRUE(d.degraded) << i;
    EXPECT_FALSE(d.error.empty());
    EXPECT_TRUE(d.verdicts.empty());
    EXPECT_EQ(d.allowed, i % 3 == 0)
        << i << ": open alone allows; closed, or closed with open, refuses";
    if (!d.allowed) {
      EXPECT_GT(d.retry_after_ms, 0);
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms)
      << "the waiting checks were answered with the lost call, not each after a timeout";
  const auto stats = l->stats();
  EXPECT_EQ(stats.at("open").failed_open, 11u);
  EXPECT_EQ(stats.at("open").failed_closed, 10u);
  EXPECT_EQ(stats.at("closed").failed_closed, 20u);
  EXPECT_EQ(l->script_errors(), 0u) << "Redis being lost is not a script error";
}

}  // namespace
}  // namespace bellhop::ratelimit
