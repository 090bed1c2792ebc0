// bellhop_ratelimit against a real redis-server. With a test clock every decision of each
// algorithm is compared with an exact model (integer arithmetic), so a rounding slip or an
// off-by-one in the script shows as a named difference; on Redis's own clock, four connections
// hammer one key to show the limit holds across processes. Then script and server loss, and
// what a check answers when Redis cannot decide.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
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

// Runs one check and waits for its decision. The promise is shared with the handler so a
// decision arriving after a timed-out wait has somewhere to go.
decision check_and_wait(limiter& l, const std::vector<limit_key>& keys, std::int64_t cost,
                        io_thread& io) {
  auto p = std::make_shared<std::promise<decision>>();
  auto f = p->get_future();
  l.check(keys, cost, io.executor(), [p](decision d) { p->set_value(std::move(d)); });
  if (f.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "no decision within 10 s";
    decision none;
    none.degraded = true;
    none.error = "test: no decision";
    return none;
  }
  return f.get();
}

std::string describe(const verdict& v) {
  std::ostringstream s;
  s << (v.allowed ? "allowed" : "refused") << " remaining=" << v.remaining
    << " retry_after=" << v.retry_after_ms << " reset=" << v.reset_ms;
  return s.str();
}

bool same(const verdict& a, const verdict& b) {
  return a.allowed == b.allowed && a.remaining == b.remaining &&
         a.retry_after_ms == b.retry_after_ms && a.reset_ms == b.reset_ms;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return a <= 0 ? a / b : (a + b - 1) / b;
}

// ---- exact models of the three algorithms (what the script must answer) ------------------

struct fixed_window_model {
  fixed_window_model(std::int64_t l, std::int64_t w) : limit(l), window(w) {}
  std::int64_t limit, window;
  std::int64_t start = -1, used = 0;

  verdict decide(std::int64_t now, std::int64_t cost) {
    const auto s = now - now % window;
    if (s != start) start = s, used = 0;
    verdict v;
    v.allowed = used + cost <= limit;
    v.reset_ms = start + window - now;
    v.retry_after_ms = v.allowed ? 0 : cost > limit ? -1 : v.reset_ms;
    if (v.allowed) used += cost;
    v.remaining = limit - used;
    return v;
  }
};

struct sliding_window_model {
  sliding_window_model(std::int64_t l, std::int64_t w) : limit(l), window(w) {}
  std::int64_t limit, window;
  std::multiset<std::int64_t> units;  // one time per unit admitted

  verdict decide(std::int64_t now, std::int64_t cost) {
    // Units that left the window never come back: drop them like the script does.
    units.erase(units.begin(), units.upper_bound(now - window));
    const auto used = static_cast<std::int64_t>(units.size());
    verdict v;
    v.allowed = used + cost <= limit;
    if (!v.allowed) {
      // The (used + cost - limit)-th oldest unit has to leave first.
      v.retry_after_ms =
          cost > limit ? -1 : *std::next(units.begin(), used + cost - limit - 1) + window - now;
    }
    v.reset_ms = used > 0 ? *units.rbegin() + window - now : 0;
    if (v.allowed && cost > 0) {
      for (std::int64_t i = 0; i < cost; ++i) units.insert(now);
      v.reset_ms = window;
    }
    v.remaining = limit - used - (v.allowed ? cost : 0);
    return v;
  }
};

// GCRA in units of 1/limit ms, where the emission interval (window / limit ms) is exactly
// `window` units, so nothing is rounded.
struct gcra_model {
  gcra_model(std::int64_t l, std::int64_t w, std::int64_t b) : limit(l), window(w), burst(b) {}
  std::int64_t limit, window, burst;
  std::int64_t tat = 0;  // in 1/limit ms

  verdict decide(std::int64_t now_ms, std::int64_t cost) {
    const auto now = now_ms * limit, capacity = burst * window;
    const auto from = std::max(tat, now);
    const auto next = from + cost * window;
    verdict v;
    v.allowed = next - capacity <= now;
    if (!v.allowed) v.retry_after_ms = cost > burst ? -1 : ceil_div(next - capacity - now, limit);
    const auto after = v.allowed ? next : from;
    v.remaining = (now + capacity - after) / window;
    v.reset_ms = ceil_div(after - now, limit);
    if (v.allowed && cost > 0) tat = next;
    return v;
  }
};

// ---- the fixture: one redis-server, one broker, one limiter on a test clock ---------------

class LimiterTest : public ::testing::Test {
 protected:
  // A multiple of every window used with the test clock (a day included).
  static constexpr std::int64_t epoch_ms = 12 * 86'400'000LL;

  LimiterTest()
      : broker_(test::fast_broker_options(redis_.tcp_endpoint())),
        limiter_(broker_, contract::key_space()) {
    broker_.start();
    limiter_.set_test_clock([this] { return now_.load(); });
  }
  ~LimiterTest() override { broker_.stop(); }

  decision check(const std::vector<limit_key>& keys, std::int64_t cost = 1) {
    return check_and_wait(limiter_, keys, cost, io_);
  }
  verdict one(const policy& p, std::int64_t cost = 1, const std::string& subject = "s") {
    auto d = check({{&p, subject}}, cost);
    EXPECT_FALSE(d.degraded) << d.error;
    if (d.verdicts.size() != 1) {
      ADD_FAILURE() << "expected one verdict";
      return {};
    }
    // With one policy the decision is that policy's verdict.
    EXPECT_EQ(d.allowed, d.verdicts[0].allowed);
    EXPECT_EQ(d.remaining, d.verdicts[0].remaining);
    EXPECT_EQ(d.retry_after_ms, d.verdicts[0].retry_after_ms);
    EXPECT_EQ(d.reset_ms, d.verdicts[0].reset_ms);
    EXPECT_EQ(d.limit, p.limit);
    EXPECT_EQ(d.redis_time_ms, now_.load()) << "the script decided at the test clock's time";
    return d.verdicts[0];
  }
  void advance(std::int64_t ms) { now_ += ms; }
  std::int64_t now() const { return now_.load(); }

  test::redis_server redis_;
  io_thread io_;
  broker::broker broker_;
  limiter limiter_;
  std::atomic<std::int64_t> now_{epoch_ms};
};

// ---- 1. each algorithm, deterministic -------------------------------------------------------

TEST_F(LimiterTest, FixedWindowAdmitsExactlyLimitPerWindowAndSaysWhenTheNextOpens) {
  constexpr std::int64_t limit = 5, window = 1000;
  const auto p = make_policy("fw", algorithm::fixed_window, limit, window);
  advance(250);
  for (std::int64_t i = 0; i < limit; ++i) {
    const auto v = one(p);
    ASSERT_TRUE(v.allowed) << i;
    EXPECT_EQ(v.remaining, limit - 1 - i) << "counts down to 0";
    EXPECT_EQ(v.retry_after_ms, 0);
    EXPECT_EQ(v.reset_ms, 750);
  }
  const auto refused = one(p);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_ms, 750) << "until the window ends";
  EXPECT_EQ(refused.reset_ms, 750);
  EXPECT_EQ(redis_.cli("HGET " + fixed_window_hash("fw", window, now()) + " s"), "5")
      << "the refusal consumed nothing";

  advance(749);
  const auto last_ms = one(p);
  EXPECT_FALSE(last_ms.allowed) << "the window's last millisecond";
  EXPECT_EQ(last_ms.retry_after_ms, 1);
  advance(1);
  const auto next = one(p, 3);
  EXPECT_TRUE(next.allowed) << "a new window";
  EXPECT_EQ(next.remaining, limit - 3) << "cost 3 consumed three";
  EXPECT_EQ(next.reset_ms, window);
  const auto too_many = one(p, 3);
  EXPECT_FALSE(too_many.allowed) << "3 do not fit in the 2 left";
  EXPECT_EQ(too_many.remaining, 2);
  EXPECT_EQ(too_many.retry_after_ms, window);
  EXPECT_TRUE(one(p, 2).allowed) << "2 do";
  const auto never = one(p, limit + 1);
  EXPECT_FALSE(never.allowed);
  EXPECT_EQ(never.retry_after_ms, -1) << "a cost above the limit never fits";
  const auto peek = one(p, 0);
  EXPECT_TRUE(peek.allowed);
  EXPECT_EQ(peek.remaining, 0);

  // Driven: uneven steps across windows, each answer equal to the model's.
  fixed_window_model model(limit, window);
  lcg rng{7};
  for (int i = 0; i < 400; ++i) {
    advance(rng.below(4) == 0 ? rng.below(700) : rng.below(40));
    const auto cost = rng.below(8) == 0 ? rng.below(limit + 2) : 1;
    const auto expected = model.decide(now(), cost);
    const auto got = one(p, cost, "driven");
    ASSERT_TRUE(same(got, expected)) << "at " << now() - epoch_ms << " cost " << cost << ": got "
                                     << describe(got) << ", expected " << describe(expected);
  }
}

// A pair is read before any pair is written, and written only when its whole decision
// consumes: in either order of the pairs the same state. Neither algorithm creates a key per
// subject: a fixed window's pair is a field of its window's hash, gcra's a field of its slice's
// hash, read with the call's other fields and written at its end.
TEST_F(LimiterTest, APairIsWrittenOnlyWhenItsDecisionConsumesAndANewSubjectIsAFieldNotAKey) {
  const auto fw = make_policy("fw", algorithm::fixed_window, 3, 60'000);
  const auto gc = make_policy("gc", algorithm::gcra, 7, 1000, 4);
  advance(1234);
  const auto fws = fixed_window_hash("fw", 60'000, now());
  const auto gcs = gcra_hash("gc", 7, 1000, 4, now());
  const auto a = check({{&gc, "y1"}, {&fw, "x1"}}, 2);
  const auto b = check({{&fw, "x2"}, {&gc, "y2"}}, 2);
  ASSERT_TRUE(a.allowed) << a.error;
  ASSERT_TRUE(b.allowed) << b.error;
  EXPECT_EQ(a.verdicts.at(0).remaining, b.verdicts.at(1).remaining);
  EXPECT_EQ(a.verdicts.at(1).remaining, b.verdicts.at(0).remaining);
  EXPECT_EQ(a.verdicts.at(0).reset_ms, b.verdicts.at(1).reset_ms);
  EXPECT_EQ(a.verdicts.at(1).reset_ms, b.verdicts.at(0).reset_ms);
  EXPECT_EQ(a.verdicts.at(0).remaining, 2) << "a burst of 4, 2 taken";
  EXPECT_EQ(a.verdicts.at(0).reset_ms, 286) << "2 of 7 per second: 285.7 ms to be full again";
  const auto state = redis_.cli("HGET " + gcs + " y1");
  EXPECT_FALSE(state.empty());
  EXPECT_EQ(state, redis_.cli("HGET " + gcs + " y2"));
  EXPECT_EQ(redis_.cli("HGET " + fws + " x1"), "2");
  EXPECT_EQ(redis_.cli("HGET " + fws + " x2"), "2");
  // A new subject of either: no key of its own, one HMGET and one HSET for the call. gcra is
  // 234 ms into its slice of 1 s, less than the 572 ms its bucket takes to fill: the latest TAT
  // of the slice before is looked at too (HGET), and there is none; past the 572 ms, not even.
  for (const auto* p : {&gc, &fw, &gc}) {
    const auto hmgets = redis_.command_calls("hmget"), hsets = redis_.command_calls("hset");
    const auto gets = redis_.command_calls("get"), sets = redis_.command_calls("set");
    const auto hgets = redis_.command_calls("hget");
    ASSERT_TRUE(check({{p, "fresh"}}).allowed) << p->name;
    EXPECT_EQ(redis_.command_calls("hget") - hgets, p == &gc && now() % 1000 < 572 ? 1 : 0)
        << p->name;
    EXPECT_EQ(redis_.command_calls("hmget") - hmgets, 1) << p->name;
    EXPECT_EQ(redis_.command_calls("hset") - hsets, 1) << p->name;
    EXPECT_EQ(redis_.command_calls("get") - gets + redis_.command_calls("set") - sets, 0);
    EXPECT_EQ(redis_.cli("EXISTS ratelimit:" + p->name + ":fresh"), "0") << p->name;
    advance(350);
  }
  ASSERT_EQ(now() % 1000, 284);
  const auto gcs_now = gcra_hash("gc", 7, 1000, 4, now());

  // Not consumed: refused by the pair before it, or by its own cost; or only a look.
  ASSERT_TRUE(check({{&fw, "full"}}, 3).allowed);
  const auto refused_before = check({{&fw, "full"}, {&gc, "new1"}});
  EXPECT_FALSE(refused_before.allowed);
  EXPECT_TRUE(refused_before.verdicts.at(1).allowed) << "it alone would allow";
  EXPECT_EQ(refused_before.verdicts.at(1).remaining, 3);
  const auto too_large = check({{&gc, "new2"}}, 5);
  EXPECT_FALSE(too_large.allowed);
  EXPECT_EQ(too_large.retry_after_ms, -1) << "a cost above the burst never fits";
  const auto too_large_fw = check({{&fw, "new3"}}, 4);
  EXPECT_FALSE(too_large_fw.allowed);
  const auto look = check({{&fw, "new4"}, {&gc, "new5"}}, 0);
  EXPECT_TRUE(look.allowed);
  EXPECT_EQ(look.verdicts.at(1).remaining, 4);
  for (const auto* field : {"new1", "new2", "new5"})
    EXPECT_EQ(redis_.cli("HEXISTS " + gcs_now + " " + field), "0") << field;
  for (const auto* field : {"new3", "new4"})
    EXPECT_EQ(redis_.cli("HEXISTS " + fws + " " + field), "0") << field;
  // A pair refused after another allowed: neither is written.
  const auto full_before = redis_.cli("HGET " + fws + " full");
  const auto refused_last = check({{&gc, "new6"}, {&fw, "full"}});
  EXPECT_FALSE(refused_last.allowed);
  EXPECT_EQ(redis_.cli("HGET " + fws + " full"), full_before);
  EXPECT_EQ(redis_.cli("HEXISTS " + gcs_now + " new6"), "0");
}

// gcra keeps one hash per policy and slice of time, a field per subject: its TAT in 1/limit ms
// from the end of the slice. A slice is as long as the bucket takes to fill (at least 1 s), so
// a subject's state is in its slice's hash or the one before, which is read only while
// something in it can still be ahead. A hash lives 3 slices; the first write of a slice unlinks
// the one two slices before it. What a field holds is not trusted.
TEST_F(LimiterTest, GcraIsOneHashPerSliceWithAFieldPerSubjectCarriedIntoTheNextSlice) {
  // 2 per second, a burst of 4: 2,000 ms from empty to full, slices of 2 s.
  const auto p = make_policy("g", algorithm::gcra, 2, 1000, 4);
  advance(1900);  // 100 ms before the end of a slice
  const auto hash = gcra_hash("g", 2, 1000, 4, now());
  ASSERT_EQ(gcra_hash("g", 2, 1000, 4, now() + 99), hash);
  ASSERT_NE(gcra_hash("g", 2, 1000, 4, now() + 100), hash);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(one(p, 1, "a").allowed) << i;
  EXPECT_FALSE(one(p, 1, "a").allowed) << "the burst of 4 is used";
  // The TAT is 2,000 ms ahead: 1,900 ms past the end of the slice, in halves of a ms; it is
  // also the slice's latest.
  EXPECT_EQ(redis_.cli("HGET " + hash + " a"), "3800");
  EXPECT_EQ(redis_.cli("HGET " + hash + " @max"), "3800");
  // Until the end of the slice two slices on, plus the slack a test clock adds.
  const auto ttl = std::stoll(redis_.cli("PTTL " + hash)) - 600'000;
  EXPECT_LE(ttl, 4100);
  EXPECT_GT(ttl, 3000);

  // The next slice: the bucket carried over from the hash before, 600 ms later 1 unit back.
  advance(600);
  const auto next = gcra_hash("g", 2, 1000, 4, now());
  ASSERT_NE(next, hash);
  const auto hmgets = redis_.command_calls("hmget");
  const auto d = one(p, 1, "a");
  EXPECT_EQ(redis_.command_calls("hmget") - hmgets, 2) << "the slice before is read too";
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_FALSE(one(p, 1, "a").allowed);
  EXPECT_EQ(redis_.cli("HGET " + next + " a"), "800") << "TAT 400 ms past its slice's end";
  EXPECT_EQ(redis_.cli("HEXISTS " + next + " b"), "0");
  EXPECT_EQ(redis_.cli("EXISTS " + hash), "1") << "the slice before is still read";
  // A per-subject key of an earlier version is not read, and left to expire.
  redis_.cli("SET ratelimit:g:b \"" + std::to_string(now() + 5000) + " 0 2\"");
  EXPECT_EQ(one(p, 1, "b").remaining, 3);
  // Fields that are not whole numbers within 2^53 hold no state: a full bucket.
  redis_.cli("HSET " + next + " e 2.5 f garbage g inf h 1e300 i -1e300");
  for (const auto* field : {"e", "f", "g", "h", "i"})
    EXPECT_EQ(one(p, 1, field).remaining, 3) << field;
  // A changed limit: hashes of other units, so the buckets start full.
  const auto faster = make_policy("g", algorithm::gcra, 4, 1000, 4);
  EXPECT_EQ(one(faster, 1, "a").remaining, 3);

  // Two slices on, the first one is unlinked by the first write, and the bucket is full. The
  // slice before holds no TAT still ahead (its latest, 400 ms past its end, has passed): only
  // the current slice is read.
  advance(2000);
  const auto hmgets_later = redis_.command_calls("hmget");
  EXPECT_EQ(one(p, 1, "a").remaining, 3);
  EXPECT_EQ(redis_.command_calls("hmget") - hmgets_later, 1);
  EXPECT_EQ(redis_.cli("EXISTS " + hash), "0") << "unlinked when the slice after next began";
  EXPECT_EQ(redis_.cli("EXISTS " + next), "1");
}

// A fixed window keeps one hash per policy and window, a field per subject: a new subject is a
// field, not a key of its own. The hash lives until the end of the next window; the first
// write of a window unlinks the previous window's hash. What a field holds is not trusted.
TEST_F(LimiterTest, AFixedWindowIsOneHashPerWindowWithAFieldPerSubject) {
  const auto p = make_policy("fw", algorithm::fixed_window, 5, 1000);
  advance(250);
  const auto hash = fixed_window_hash("fw", 1000, now());
  EXPECT_TRUE(one(p, 1, "a").allowed);
  EXPECT_TRUE(one(p, 2, "b").allowed);
  EXPECT_EQ(redis_.cli("HGETALL " + hash), "a\n1\nb\n2");
  // Until the end of the next window (1,750 ms from now), plus the slack a test clock adds
  // (lua/check.lua: time does not pass for Redis as for the test clock).
  const auto ttl = std::stoll(redis_.cli("PTTL " + hash)) - 600'000;
  EXPECT_LE(ttl, 1750);
  EXPECT_GT(ttl, 1000);
  // A look or a refusal writes nothing.
  EXPECT_TRUE(one(p, 0, "c").allowed);
  EXPECT_FALSE(one(p, 6, "c").allowed);
  EXPECT_EQ(redis_.cli("HEXISTS " + hash + " c"), "0");
  // A per-subject key of an earlier version is not read, and left to expire.
  redis_.cli("SET ratelimit:fw:d \"" + std::to_string(now() - now() % 1000) + " 5\"");
  EXPECT_EQ(one(p, 1, "d").remaining, 4);
  EXPECT_EQ(redis_.cli("GET ratelimit:fw:d"), std::to_string(now() - now() % 1000) + " 5");
  // Fields that are not whole numbers: read as their whole part, or as nothing used when they
  // are not a number from 0 to 2^53.
  redis_.cli("HSET " + hash + " e 2.7 f garbage g -3 h inf i 1e300");
  EXPECT_EQ(one(p, 1, "e").remaining, 2);
  for (const auto* field : {"f", "g", "h", "i"}) EXPECT_EQ(one(p, 1, field).remaining, 4) << field;

  // The next window: a new hash, and the one before it is gone.
  advance(1000);
  const auto next = fixed_window_hash("fw", 1000, now());
  ASSERT_NE(next, hash);
  EXPECT_EQ(one(p, 1, "a").remaining, 4) << "a new window";
  EXPECT_EQ(redis_.cli("HGETALL " + next), "a\n1");
  EXPECT_EQ(redis_.cli("EXISTS " + hash), "0") << "unlinked when the next one was created";
  // A window with no checks leaves its hash to expire: after it, the next write finds no hash
  // to unlink, and decides as usual.
  advance(2000);
  EXPECT_EQ(one(p, 1, "a").remaining, 4);
  EXPECT_EQ(redis_.cli("EXISTS " + next), "1") << "not unlinked: only its lifetime ends it";
}

TEST_F(LimiterTest, SlidingWindowNeverAdmitsMoreThanLimitInAnyWindowAndRetryAfterIsExact) {
  constexpr std::int64_t limit = 10, window = 1000;
  const auto p = make_policy("sw", algorithm::sliding_window, limit, window);
  sliding_window_model model(limit, window);
  std::vector<std::int64_t> admitted;  // one entry per unit
  std::vector<std::int64_t> checked_at;
  // One check, which must answer what the model does.
  const auto drive = [&](std::int64_t cost) {
    const auto expected = model.decide(now(), cost);
    const auto got = one(p, cost);
    EXPECT_TRUE(same(got, expected)) << "at " << now() - epoch_ms << " cost " << cost << ": got "
                                     << describe(got) << ", expected " << describe(expected);
    checked_at.push_back(now());
    if (got.allowed) admitted.insert(admitted.end(), cost, now());
    return got;
  };
  int refusals = 0, probes = 0;
  lcg rng{11};
  // Steps of a tenth of the window (sometimes off the grid) over ~8 windows, bursts of 0-6
  // checks, now and then a cost of several units.
  for (int step = 0; step < 80 && !HasFailure(); ++step) {
    advance(step % 7 == 3 ? 100 + rng.below(60) - 30 : 100);
    const auto burst = rng.below(7);
    for (std::int64_t k = 0; k < burst; ++k) {
      const auto cost = rng.below(5) == 0 ? 1 + rng.below(4) : 1;
      const auto got = drive(cost);
      if (got.allowed || got.retry_after_ms < 0 || ++refusals % 3 != 0) continue;
      // Every third refusal: the answer is honest to the millisecond. 1 ms early is still
      // refused (which consumes nothing); at retry_after the same cost fits.
      ++probes;
      advance(got.retry_after_ms - 1);
      EXPECT_FALSE(drive(cost).allowed) << "1 ms before retry_after " << got.retry_after_ms;
      advance(1);
      EXPECT_TRUE(drive(cost).allowed) << "at retry_after " << got.retry_after_ms;
    }
  }
  EXPECT_GE(probes, 5);
  ASSERT_GT(admitted.size(), 50u);
  // The bound itself, independent of the model: every window (t - W, t] ending at a time
  // anything was checked holds at most `limit` admitted units, and some are full.
  bool some_full = false;
  for (const auto t : checked_at) {
    const auto in_window = std::count_if(admitted.begin(), admitted.end(),
                                         [&](std::int64_t a) { return a > t - window && a <= t; });
    ASSERT_LE(in_window, limit) << "window ending at " << t - epoch_ms;
    some_full = some_full || in_window == limit;
  }
  EXPECT_TRUE(some_full) << "the sequence should reach the limit";
  EXPECT_EQ(one(p, limit + 1).retry_after_ms, -1);
}

TEST_F(LimiterTest, SlidingWindowTakesACostOfManyThousandUnitsInOneCheck) {
  // One member per unit: a cost of 60000 is 60000 members added by one script call.
  constexpr std::int64_t limit = 100'000, window = 60'000;
  const auto p = make_policy("bulk", algorithm::sliding_window, limit, window);
  const auto first = one(p, 60'000);
  EXPECT_TRUE(first.allowed);
  EXPECT_EQ(first.remaining, 40'000);
  EXPECT_EQ(redis_.cli("ZCARD ratelimit:bulk:s"), "60000");
  advance(10);
  const auto second = one(p, 40'001);
  EXPECT_FALSE(second.allowed);
  EXPECT_EQ(second.retry_after_ms, window - 10) << "until the first 60000 leave";
  EXPECT_TRUE(one(p, 40'000).allowed);
  EXPECT_EQ(one(p, 0).remaining, 0);
}

TEST_F(LimiterTest, GcraAdmitsTheBurstThenNeverMoreThanBurstPlusRateTimesElapsed) {
  struct params {
    std::int64_t limit, window, burst;
  };
  // 100 ms per unit; a third of a second per unit (the interval is not a whole number of ms);
  // 3001 per second (several units per ms, the interval a fraction of one).
  for (const auto [limit, window, burst] :
       {params{10, 1000, 4}, params{3, 1000, 2}, params{3001, 1000, 10}}) {
    SCOPED_TRACE(testing::Message() << limit << " per " << window << " ms, burst " << burst);
    const auto p = make_policy("g" + std::to_string(limit), algorithm::gcra, limit, window, burst);
    gcra_model model(limit, window, burst);
    std::vector<std::int64_t> admitted;  // one entry per unit
    bool diverged = false;               // from the model: reported once, then on to the next round
    const auto drive = [&](std::int64_t cost) {
      const auto expected = model.decide(now(), cost);
      const auto got = one(p, cost);
      if (!diverged && !same(got, expected)) {
        diverged = true;
        ADD_FAILURE() << "at " << now() - epoch_ms << " cost " << cost << ": got " << describe(got)
                      << ", expected " << describe(expected);
      }
      if (got.allowed) admitted.insert(admitted.end(), cost, now());
      return got;
    };
    advance(10'000);  // away from the previous round's bucket

    // From fresh, the burst at once, counting down; then a refusal until one interval passes.
    for (std::int64_t i = 0; i < burst; ++i) {
      const auto v = drive(1);
      ASSERT_TRUE(v.allowed) << i;
      EXPECT_EQ(v.remaining, burst - 1 - i);
    }
    const auto refused = drive(1);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.remaining, 0);
    EXPECT_EQ(refused.retry_after_ms, ceil_div(window, limit));
    EXPECT_EQ(refused.reset_ms, ceil_div(burst * window, limit)) << "until the bucket is full";

    const auto start = now();
    int refusals = 0, probes = 0;
    lcg rng{static_cast<std::uint64_t>(limit)};
    const auto interval = std::max<std::int64_t>(1, window / limit);
    for (int step = 0; step < 300 && !diverged; ++step) {
      // Mostly faster than the rate (refusals), now and then a pause that refills the bucket.
      advance(rng.below(10) == 0 ? rng.below(burst * interval * 2) : rng.below(interval));
      const auto checks = 1 + rng.below(4);
      for (std::int64_t k = 0; k < checks; ++k) {
        const auto cost = rng.below(6) == 0 ? 1 + rng.below(std::min<std::int64_t>(burst, 3)) : 1;
        const auto got = drive(cost);
        if (got.allowed || got.retry_after_ms < 0 || ++refusals % 4 != 0) continue;
        ++probes;
        advance(got.retry_after_ms - 1);
        EXPECT_FALSE(drive(cost).allowed) << "1 ms before retry_after " << got.retry_after_ms;
        advance(1);
        EXPECT_TRUE(drive(cost).allowed) << "at retry_after " << got.retry_after_ms;
      }
    }
    if (diverged) continue;
    EXPECT_GE(probes, 10);
    ASSERT_GT(admitted.size(), 100u);
    // The bound itself, independent of the model, over every span of admissions:
    // n units in [a, b] need n <= burst + limit * (b - a) / window.
    bool some_tight = false;
    for (std::size_t a = 0; a < admitted.size(); ++a) {
      for (std::size_t b = a; b < admitted.size(); ++b) {
        const auto n = static_cast<std::int64_t>(b - a + 1);
        const auto allowance = burst * window + limit * (admitted[b] - admitted[a]);
        ASSERT_LE(n * window, allowance)
            << n << " units in " << admitted[a] - start << ".." << admitted[b] - start;
        some_tight = some_tight || (n + 1) * window > allowance;
      }
    }
    EXPECT_TRUE(some_tight) << "the sequence should reach the bound";
    EXPECT_EQ(one(p, burst + 1).retry_after_ms, -1) << "more than the bucket never fits";
  }
}

// ---- 2. several policies in one check ---------------------------------------------------------

TEST_F(LimiterTest, ACheckRefusedByAnyOnePolicyConsumesFromNone) {
  // A sender's rate, a property's daily cap and a sender-recipient pair's limit, as the gateway
  // combines them for one outbound message.
  const auto sender = make_policy("sender", algorithm::gcra, 10, 1000, 3);
  const auto daily = make_policy("daily", algorithm::fixed_window, 5, 86'400'000);
  const auto pair = make_policy("pair", algorithm::sliding_window, 4, 60'000);
  // Each round makes a different policy the one that refuses.
  struct round {
    std::string suffix;
    std::int64_t step_ms;            // between the admitted checks
    std::int64_t admitted;           // before the refusal
    std::size_t refusing;            // index in `keys`
    std::vector<std::int64_t> left;  // remaining of each policy at the refusal
  };
  const std::vector<round> rounds = {
      // 100 ms apart the sender refills as fast as it is used; the pair's 4 run out first.
      {"-a", 100, 4, 2, {3, 1, 0}},
      // 30 s apart the pair never holds more than 2; the daily 5 run out.
      {"-b", 30'001, 5, 1, {3, 0, 3}},
      // All at once: the sender's burst of 3 runs out.
      {"-c", 0, 3, 0, {0, 2, 1}},
  };
  for (const auto& r : rounds) {
    SCOPED_TRACE("round " + r.suffix);
    const std::vector<limit_key> keys = {{&sender, "+4930" + r.suffix},
                                         {&daily, "hotel" + r.suffix},
                                         {&pair, "+4930:+4915" + r.suffix}};
    const auto daily_hash = fixed_window_hash("daily", 86'400'000, now());
    const auto keys_in_redis = [&] {
      return redis_.cli("HGET " + gcra_hash("sender", 10, 1000, 3, now()) + " +4930" + r.suffix) +
             "|" + redis_.cli("HGET " + daily_hash + " hotel" + r.suffix) + "|" +
             redis_.cli("ZRANGE ratelimit:pair:+4930:+4915" + r.suffix + " 0 -1 WITHSCORES");
    };
    for (std::int64_t i = 0; i < r.admitted; ++i) {
      const auto d = check(keys);
      ASSERT_TRUE(d.allowed) << i << ": " << d.error;
      advance(r.step_ms);
    }
    // A peek first: it drops what left the sliding window, as any check does, so what follows
    // must leave the keys exactly as they are now.
    const auto peek_before = check(keys, 0);
    ASSERT_TRUE(peek_before.allowed) << "a peek is never refused";
    const auto before = keys_in_redis();

    const auto refused = check(keys);
    ASSERT_FALSE(refused.degraded) << refused.error;
    ASSERT_FALSE(refused.allowed);
    ASSERT_EQ(refused.verdicts.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i)
      EXPECT_EQ(refused.verdicts[i].allowed, i != r.refusing) << "policy " << i;
    EXPECT_EQ(refused.limit, keys[r.refusing].applies->limit) << "the refusing policy binds";
    EXPECT_EQ(refused.remaining, r.left[r.refusing]);
    EXPECT_EQ(refused.retry_after_ms, refused.verdicts[r.refusing].retry_after_ms);
    EXPECT_GT(refused.retry_after_ms, 0);
    EXPECT_EQ(keys_in_redis(), before) << "the refusal changed a key";

    // Peeks see what the admitted checks left, not one unit less, however many are made.
    for (int i = 0; i < 3; ++i) {
      const auto peek = check(keys, 0);
      ASSERT_EQ(peek.verdicts.size(), 3u);
      for (std::size_t k = 0; k < 3; ++k) {
        EXPECT_TRUE(peek.verdicts[k].allowed) << "policy " << k;
        EXPECT_EQ(peek.verdicts[k].remaining, r.left[k]) << "policy " << k;
      }
    }
    EXPECT_EQ(keys_in_redis(), before) << "a peek changed a key";
    EXPECT_EQ(redis_.cli("HGET " + daily_hash + " hotel" + r.suffix), std::to_string(r.admitted));
    advance(100'000'000);  // past every window: the next round starts clean
  }
  const auto stats = limiter_.stats();
  for (const auto* name : {"sender", "daily", "pair"}) {
    EXPECT_EQ(stats.at(name).denied, 1u) << name << " refused once";
    // Every admitted check and every peek (4 a round) is an allowed decision for each policy.
    EXPECT_EQ(stats.at(name).allowed, 4u + 5u + 3u + 3 * 4u) << name;
  }
}

// ---- 3. one key, four connections, Redis's clock --------------------------------------------

// Four brokers (four connections, as four gateway processes would have), each driven from its
// own io thread with `in_flight` checks outstanding, on one key until `stop` says so or the
// deadline passes. `ready` runs once every connection is up, just before the first check.
// Returns every decision.
struct hammered {
  std::vector<decision> decisions;
  bool timed_out = false;
};

hammered hammer(
    const test::redis_server& redis, const policy& p, std::function<bool(const decision&)> stop,
    std::chrono::milliseconds deadline, std::function<void()> ready = [] {}) {
  constexpr int brokers = 4, in_flight = 32;
  struct client {
    explicit client(const test::redis_server& redis)
        : b(test::fast_broker_options(redis.tcp_endpoint())), l(b, contract::key_space()) {}
    io_thread io;
    broker::broker b;
    limiter l;
  };
  std::vector<std::unique_ptr<client>> clients;
  for (int i = 0; i < brokers; ++i) {
    clients.push_back(std::make_unique<client>(redis));
    clients.back()->b.start();
  }
  for (auto& c : clients) EXPECT_TRUE(test::eventually([&] { return c->b.ready(); }, 5s));
  ready();

  const std::vector<limit_key> keys = {{&p, "shared"}};
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::mutex mu;
  hammered out;
  bool stopping = false;
  std::atomic<int> outstanding{brokers * in_flight};
  // A check whose handler, on the client's own io thread, sends the next one.
  std::function<void(client*)> send = [&](client* c) {
    c->l.check(keys, 1, c->io.executor(), [&, c](decision d) {
      bool again = false;
      {
        std::lock_guard lock(mu);
        if (!stopping && stop(d)) stopping = true;
        if (!stopping && std::chrono::steady_clock::now() >= until) {
          stopping = true;
          out.timed_out = true;
        }
        again = !stopping;
        out.decisions.push_back(std::move(d));
      }
      if (again) {
        ++outstanding;
        send(c);
      }
      --outstanding;
    });
  };
  for (auto& c : clients) {
    for (int i = 0; i < in_flight; ++i)
      boost::asio::post(c->io.executor(), [&send, c = c.get()] { send(c); });
  }
  EXPECT_TRUE(test::eventually([&] { return outstanding.load() == 0; }, deadline + 10s));
  {
    // Should checks still be pending (a failure above), none may send another.
    std::lock_guard lock(mu);
    stopping = true;
  }
  for (auto& c : clients) c->b.stop();    // fails whatever is still pending
  for (auto& c : clients) c->io.drain();  // the last handlers have returned
  return out;
}

// Redis's clock in ms, read with redis-cli.
std::int64_t redis_time_ms(const test::redis_server& redis) {
  std::istringstream in(redis.cli("TIME"));
  std::int64_t s = 0, us = 0;
  in >> s >> us;
  return s * 1000 + us / 1000;
}

TEST_F(LimiterTest, FourConnectionsOnOneKeyNeverExceedTheFixedWindowAndUseNearlyAllOfIt) {
  const auto p = make_policy("shared", algorithm::fixed_window, 100, 1000);
  // Start just after a window opens, and stop once the 6th window has refused something: every
  // window touched is then one the hammering saturated (in-flight stragglers land in that 6th
  // window, which has most of a second left), so "nearly all" holds for each of them.
  std::int64_t first_window = 0;
  const auto align = [&] {
    const auto t = redis_time_ms(redis_);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000 - t % 1000 + 5));
    first_window = t / 1000 + 1;
  };
  auto result = hammer(
      redis_, p,
      [&](const decision& d) { return !d.allowed && d.redis_time_ms / 1000 >= first_window + 5; },
      10s, align);
  EXPECT_FALSE(result.timed_out);
  std::map<std::int64_t, int> allowed_in, checks_in;
  int degraded = 0;
  for (const auto& d : result.decisions) {
    if (d.degraded) {
      ++degraded;
      continue;
    }
    ++checks_in[d.redis_time_ms / 1000];
    if (d.allowed) ++allowed_in[d.redis_time_ms / 1000];
  }
  EXPECT_EQ(degraded, 0);
  EXPECT_GE(checks_in.size(), 6u);
  int total = 0;
  for (const auto& [window, n] : allowed_in) {
    EXPECT_LE(n, 100) << "window " << window;
    total += n;
  }
  EXPECT_GE(total, 0.95 * 100 * static_cast<double>(checks_in.size()))
      << total << " allowed over " << checks_in.size() << " windows, " << result.decisions.size()
      << " checks";
}

TEST_F(LimiterTest, FourConnectionsOnOneKeyKeepTheGcraAndSlidingWindowBounds) {
  constexpr std::int64_t limit = 100, window = 1000, burst = 20;
  const auto g = make_policy("shared-gcra", algorithm::gcra, limit, window, burst);
  const auto s = make_policy("shared-sliding", algorithm::sliding_window, limit, window);
  for (const auto* p : {&g, &s}) {
    SCOPED_TRACE(p->name);
    auto result = hammer(
        redis_, *p, [](const decision&) { return false; }, 2500ms);
    std::vector<std::int64_t> admitted;
    std::int64_t first = INT64_MAX, last = 0;
    for (const auto& d : result.decisions) {
      ASSERT_FALSE(d.degraded) << d.error;
      first = std::min(first, d.redis_time_ms);
      last = std::max(last, d.redis_time_ms);
      if (d.allowed) admitted.push_back(d.redis_time_ms);
    }
    std::sort(admitted.begin(), admitted.end());
    ASSERT_FALSE(admitted.empty());
    ASSERT_GT(last - first, 2000) << "ran ~2.5 s";
    if (p == &g) {
      for (std::size_t a = 0; a < admitted.size(); ++a)
        for (std::size_t b = a; b < admitted.size(); ++b)
          ASSERT_LE(static_cast<std::int64_t>(b - a + 1) * window,
                    burst * window + limit * (admitted[b] - admitted[a]))
              << b - a + 1 << " in " << admitted[a] - first << ".." << admitted[b] - first;
      // Saturated from a fresh bucket: the burst, then one per interval until the end.
      EXPECT_GE(static_cast<double>(admitted.size()),
                0.95 * (burst + static_cast<double>(limit * (last - first)) / window));
    } else {
      for (const auto t : admitted) {
        const auto in_window = std::count_if(admitted.begin(), admitted.end(), [&](std::int64_t a) {
          return a > t - window && a <= t;
        });
        ASSERT_LE(in_window, limit) << "window ending at " << t - first;
      }
      // Saturated: the limit at once, then the limit again each time the first units leave,
      // one window later. Each such burst takes a few ms, more on a loaded machine; count
      // those with 250 ms to finish (three in the 2.5 s).
      const auto bursts = 1 + (last - admitted.front() - 250) / window;
      EXPECT_GE(static_cast<double>(admitted.size()), 0.95 * static_cast<double>(limit * bursts))
          << admitted.size() << " admitted in " << last - first << " ms";
    }
  }
}

// ---- 4. losing the script cache or the server -------------------------------------------------

TEST_F(LimiterTest, DecisionsContinueAfterScriptFlushAndAfterARedisRestart) {
  const auto p = make_policy("fw", algorithm::fixed_window, 1000, 60'000);
  std::int64_t used = 0;
  EXPECT_EQ(one(p).remaining, 1000 - ++used);
  const auto loads = redis_.command_calls("script|load");
  EXPECT_EQ(redis_.cli("SCRIPT FLUSH"), "OK");
  EXPECT_EQ(one(p).remaining, 1000 - ++used) << "reloaded, and the counts kept";
  EXPECT_EQ(redis_.command_calls("script|load"), loads + 1) << "the broker loaded the script again";

  // A flush under a pipeline of checks: each one in flight gets NOSCRIPT and its own reload.
  EXPECT_EQ(redis_.cli("SCRIPT FLUSH"), "OK");
  constexpr int burst = 64;
  std::vector<std::future<decision>> in_flight;
  for (int i = 0; i < burst; ++i) {
    auto pr = std::make_shared<std::promise<decision>>();
    in_flight.push_back(pr->get_future());
    limiter_.check({{&p, "s"}}, 1, io_.executor(),
                   [pr](decision d) { pr->set_value(std::move(d)); });
  }
  std::set<std::int64_t> remaining;
  for (auto& f : in_flight) {
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    const auto d = f.get();
    ASSERT_FALSE(d.degraded) << d.error;
    EXPECT_TRUE(d.allowed);
    remaining.insert(d.remaining);
  }
  used += burst;
  EXPECT_EQ(remaining.size(), static_cast<std::size_t>(burst)) << "each counted once";
  EXPECT_EQ(*remaining.begin(), 1000 - used);
  EXPECT_EQ(redis_.cli("HGET " + fixed_window_hash("fw", 60'000, now()) + " s"),
            std::to_string(used));

  // A restart loses the scripts and (not durable) the counts; once the broker has reconnected,
  // checks are decided by Redis again.
  redis_.restart();
  decision d;
  EXPECT_TRUE(test::eventually(
      [&] {
        d = check({{&p, "s"}});
        return !d.degraded;
      },
      10s))
      << d.error;
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 999) << "a fresh count on the fresh server";
  EXPECT_EQ(one(p).remaining, 998);
  EXPECT_EQ(limiter_.script_errors(), 0u);
}

// ---- 5. Redis down ----------------------------------------------------------------------------

TEST_F(LimiterTest, WhenRedisIsDownEachPolicyFailsOpenOrClosedAndIsCounted) {
  const auto open = make_policy("open", algorithm::gcra, 2, 1000, 0, failure_mode::open);
  const auto closed = make_policy("closed", algorithm::fixed_window, 2, 1000);
  // Normal decisions first: counted as allowed / denied.
  EXPECT_TRUE(one(open).allowed);
  EXPECT_TRUE(one(open).allowed);
  EXPECT_FALSE(one(open).allowed);
  EXPECT_TRUE(one(closed).allowed);
  auto stats = limiter_.stats();
  EXPECT_EQ(stats.at("open").allowed, 2u);
  EXPECT_EQ(stats.at("open").denied, 1u);
  EXPECT_EQ(stats.at("closed").allowed, 1u);
  EXPECT_EQ(stats.at("closed").failed_closed, 0u);

  redis_.stop();
  ASSERT_TRUE(test::eventually([&] { return !broker_.ready(); }, 5s));
  const auto a = check({{&open, "s"}});
  EXPECT_TRUE(a.degraded);
  EXPECT_FALSE(a.error.empty());
  EXPECT_TRUE(a.allowed) << "fails open, although the bucket was empty";
  EXPECT_TRUE(a.verdicts.empty());
  EXPECT_EQ(a.redis_time_ms, 0);
  const auto b = check({{&closed, "s"}});
  EXPECT_TRUE(b.degraded);
  EXPECT_FALSE(b.error.empty());
  EXPECT_FALSE(b.allowed) << "fails closed";
  EXPECT_GT(b.retry_after_ms, 0);
  const auto both = check({{&open, "s"}, {&closed, "s"}});
  EXPECT_TRUE(both.degraded);
  EXPECT_FALSE(both.allowed) << "one closed policy is enough to refuse";
  EXPECT_GT(both.retry_after_ms, 0);

  stats = limiter_.stats();
  EXPECT_EQ(stats.at("open").failed_open, 1u);
  // The mixed check was refused, so it counts as failed closed for both of its policies.
  EXPECT_EQ(stats.at("open").failed_closed, 1u);
  EXPECT_EQ(stats.at("closed").failed_open, 0u);
  EXPECT_EQ(stats.at("closed").failed_closed, 2u);
  EXPECT_EQ(stats.at("open").allowed, 2u) << "degraded decisions are not normal ones";
  EXPECT_EQ(stats.at("closed").denied, 0u);
  EXPECT_EQ(limiter_.script_errors(), 0u) << "Redis being down is not a script error";
}

// ---- 6. validation ----------------------------------------------------------------------------

TEST(LimiterValidation, RefusesPoliciesTheScriptCannotKeepAndAcceptsGoodOnes) {
  EXPECT_EQ(validate(make_policy("a", algorithm::gcra, 80, 1000, 160)), "");
  EXPECT_EQ(validate(make_policy("a", algorithm::gcra, 10, 1000)), "") << "burst 0 = limit";
  EXPECT_EQ(validate(make_policy("a", algorithm::fixed_window, 10'000, 86'400'000)), "");
  EXPECT_EQ(validate(make_policy("a", algorithm::sliding_window, 100'000, 60'000)), "");

  EXPECT_NE(validate(make_policy("a", algorithm::gcra, 0, 1000)), "") << "limit 0";
  EXPECT_NE(validate(make_policy("a", algorithm::fixed_window, -1, 1000)), "");
  EXPECT_NE(validate(make_policy("a", algorithm::sliding_window, 5, 0)), "") << "window 0";
  EXPECT_NE(validate(make_policy("a", algorithm::fixed_window, 1, 1000, 2)), "")
      << "burst on fixed_window";
  EXPECT_NE(validate(make_policy("a", algorithm::sliding_window, 1, 1000, 2)), "")
      << "burst on sliding_window";
  EXPECT_NE(validate(make_policy("a", algorithm::sliding_window, 100'001, 1000)), "");
  EXPECT_NE(validate(make_policy("a", algorithm::gcra, 10, 1000, -1)), "");
  // gcra keeps its bucket exact in 1/limit ms: burst * window_ms must stay within 2^52.
  EXPECT_EQ(validate(make_policy("a", algorithm::gcra, 1'000'000, 86'400'000, 50'000'000)), "");
  EXPECT_NE(validate(make_policy("a", algorithm::gcra, 1'000'000, 86'400'000, 60'000'000)), "");
  EXPECT_NE(validate(make_policy("a", algorithm::gcra, 1'000'000'000, 31'622'400'000)), "")
      << "burst 0 means the limit";
}

}  // namespace
}  // namespace bellhop::ratelimit
