#include "bellhop/broker/backoff.hpp"

#include <gtest/gtest.h>

namespace bellhop::broker {
namespace {

using std::chrono::milliseconds;

TEST(Backoff, DoublesUpToTheCapWithEqualJitter) {
  double r = 0.0;
  backoff b(milliseconds(100), milliseconds(1000), [&] { return r; });
  // r = 0: the lower bound, half of the exponential delay.
  EXPECT_EQ(b.next(), milliseconds(50));
  EXPECT_EQ(b.next(), milliseconds(100));
  EXPECT_EQ(b.next(), milliseconds(200));
  EXPECT_EQ(b.next(), milliseconds(400));
  EXPECT_EQ(b.next(), milliseconds(500));  // capped at 1000 -> [500, 1000]
  r = 0.999999;
  EXPECT_NEAR(static_cast<double>(b.next().count()), 1000.0, 1.0);
  EXPECT_EQ(b.attempt(), 6u);
}

TEST(Backoff, ResetStartsOver) {
  backoff b(milliseconds(10), milliseconds(10000), [] { return 0.5; });
  for (int i = 0; i < 5; ++i) b.next();
  b.reset();
  EXPECT_EQ(b.next(), milliseconds(7));  // 5 + 2.5
}

TEST(Backoff, ManyAttemptsNeverOverflow) {
  backoff b(milliseconds(100), milliseconds(5000), [] { return 1.0; });
  for (int i = 0; i < 200; ++i) {
    auto d = b.next();
    ASSERT_GE(d.count(), 0);
    ASSERT_LE(d.count(), 5000);
  }
}

TEST(Backoff, DefaultRandomStaysInRange) {
  backoff b(milliseconds(100), milliseconds(100));
  for (int i = 0; i < 1000; ++i) {
    auto d = b.next();
    ASSERT_GE(d.count(), 50);
    ASSERT_LE(d.count(), 100);
  }
}

// The outbound dispatcher's retries: 1 s doubling to 5 min (the config's defaults), whatever
// the attempt count Redis hands back.
TEST(BackoffDelay, IsTheFormulaOfEveryRetry) {
  const milliseconds initial(1000), max(300000);
  EXPECT_EQ(backoff_delay(initial, max, 0, 0.0), milliseconds(500));
  EXPECT_EQ(backoff_delay(initial, max, 0, 0.5), milliseconds(750));
  EXPECT_EQ(backoff_delay(initial, max, 3, 0.0), milliseconds(4000));
  EXPECT_EQ(backoff_delay(initial, max, 9, 0.0), milliseconds(150000));  // 512 s capped
  EXPECT_EQ(backoff_delay(initial, max, 4'000'000'000u, 0.0), milliseconds(150000));
  EXPECT_EQ(backoff_delay(milliseconds(1), milliseconds(std::int64_t{1} << 40), 63, 0.0),
            milliseconds(std::int64_t{1} << 39));  // no overflow on the way to a far cap
  EXPECT_EQ(backoff_delay(milliseconds(800), milliseconds(200), 2, 0.0), milliseconds(100));
  EXPECT_EQ(backoff_delay(milliseconds(0), max, 1'000'000'000u, 1.0), milliseconds(0));
}

}  // namespace
}  // namespace bellhop::broker
