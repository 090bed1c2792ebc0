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

}  // namespace
}  // namespace bellhop::broker
