#include "bellhop/core/quiet_hours.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace bellhop::gateway {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

// An instant in UTC: day and time of day.
system_clock::time_point utc(int y, unsigned m, unsigned d, hours h, minutes min = 0min,
                             seconds s = 0s) {
  return sys_days{year{y} / month{m} / day{d}} + h + min + s;
}

property berlin(int start_min, int end_min) {
  property p;
  p.id = "hotel-berlin";
  p.time_zone = "Europe/Berlin";
  p.quiet = quiet_hours{start_min, end_min};
  return p;
}

constexpr int hm(int h, int m = 0) {
  return h * 60 + m;
}

TEST(QuietHours, OvernightWindowInWinter) {
  const auto p = berlin(hm(22), hm(7));  // CET = UTC+1
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 1, 15, 20h, 59min, 59s)).quiet);
  // start == now: inside
  auto q = quiet_hours_at(p, utc(2026, 1, 15, 21h));
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 1, 16, 6h));
  // after midnight, local 03:00
  q = quiet_hours_at(p, utc(2026, 1, 16, 2h));
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 1, 16, 6h));
  EXPECT_TRUE(quiet_hours_at(p, utc(2026, 1, 16, 5h, 59min, 59s)).quiet);
  // end == now: outside
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 1, 16, 6h)).quiet);
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 1, 16, 12h)).quiet);
}

TEST(QuietHours, DaytimeWindow) {
  property p = berlin(hm(12), hm(14));
  p.time_zone = "UTC";
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 6, 1, 11h, 59min)).quiet);
  const auto q = quiet_hours_at(p, utc(2026, 6, 1, 13h));
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 6, 1, 14h));
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 6, 1, 14h)).quiet);
}

TEST(QuietHours, SummerTimeUsesTheSummerOffset) {
  const auto p = berlin(hm(22), hm(7));  // CEST = UTC+2
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 7, 1, 19h, 59min)).quiet);
  const auto q = quiet_hours_at(p, utc(2026, 7, 1, 20h));
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 7, 2, 5h));
}

// Sunday 2026-03-29, 01:00 UTC: Berlin's clocks jump from 02:00 CET to 03:00 CEST.
TEST(QuietHours, SpringForwardShortensTheNight) {
  const auto p = berlin(hm(22), hm(7));
  const auto q = quiet_hours_at(p, utc(2026, 3, 28, 23h));  // local 00:00 CET
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 3, 29, 5h));                    // 07:00 CEST
  EXPECT_TRUE(quiet_hours_at(p, utc(2026, 3, 29, 1h)).quiet);  // local 03:00 CEST
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 3, 29, 5h)).quiet);
}

TEST(QuietHours, EndInsideTheSkippedHourIsTheJump) {
  const auto p = berlin(hm(23), hm(2, 30));  // 02:30 does not exist on 2026-03-29
  const auto q = quiet_hours_at(p, utc(2026, 3, 29, 0h, 30min));  // local 01:30 CET
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 3, 29, 1h));  // the clocks jump: local 03:00 CEST
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 3, 29, 1h)).quiet);
  // The next night is a normal one again: 23:00-02:30 CEST.
  const auto next = quiet_hours_at(p, utc(2026, 3, 29, 21h));
  ASSERT_TRUE(next.quiet);
  EXPECT_EQ(next.until, utc(2026, 3, 30, 0h, 30min));
}

TEST(QuietHours, StartInsideTheSkippedHourIsTheJump) {
  const auto p = berlin(hm(2, 30), hm(6));
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 3, 29, 0h, 59min, 59s)).quiet);  // 01:59:59 CET
  const auto q = quiet_hours_at(p, utc(2026, 3, 29, 1h));                   // 03:00 CEST
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 3, 29, 4h));  // 06:00 CEST
}

// Sunday 2026-10-25, 01:00 UTC: the clocks go back from 03:00 CEST to 02:00 CET, so 02:00-03:00
// happens twice.
TEST(QuietHours, FallBackLengthensTheNight) {
  const auto p = berlin(hm(22), hm(7));
  const auto q = quiet_hours_at(p, utc(2026, 10, 24, 20h));  // 22:00 CEST
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 10, 25, 6h));  // 07:00 CET
  // 02:30 CET, the second time the clock shows it
  const auto again = quiet_hours_at(p, utc(2026, 10, 25, 1h, 30min));
  ASSERT_TRUE(again.quiet);
  EXPECT_EQ(again.until, utc(2026, 10, 25, 6h));
}

TEST(QuietHours, EndInsideTheRepeatedHourIsItsFirstTime) {
  const auto p = berlin(hm(23), hm(2, 30));
  const auto q = quiet_hours_at(p, utc(2026, 10, 25, 0h, 29min));  // 02:29 CEST
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 10, 25, 0h, 30min));  // the first 02:30 (CEST)
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 10, 25, 0h, 30min)).quiet);
  // 02:10 CET, the second pass: the wall clock is before 02:30 again, but the night is over.
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 10, 25, 1h, 10min)).quiet);
}

TEST(QuietHours, AcrossMidnightInAnotherZone) {
  property p;
  p.time_zone = "America/New_York";  // 2026-01: EST = UTC-5
  p.quiet = quiet_hours{hm(21), hm(8)};
  const auto q = quiet_hours_at(p, utc(2026, 1, 10, 4h, 59min));  // 23:59 local
  ASSERT_TRUE(q.quiet);
  EXPECT_EQ(q.until, utc(2026, 1, 10, 13h));
  const auto after_midnight = quiet_hours_at(p, utc(2026, 1, 10, 5h));  // 00:00 local
  ASSERT_TRUE(after_midnight.quiet);
  EXPECT_EQ(after_midnight.until, utc(2026, 1, 10, 13h));
}

TEST(QuietHours, NoQuietHoursOrUnknownZoneIsNeverQuiet) {
  property none;
  none.time_zone = "Europe/Berlin";
  EXPECT_FALSE(quiet_hours_at(none, utc(2026, 1, 16, 2h)).quiet);
  auto unknown = berlin(hm(0), hm(23, 59));
  unknown.time_zone = "Europe/Atlantis";
  EXPECT_FALSE(quiet_hours_at(unknown, utc(2026, 1, 16, 2h)).quiet);
}

TEST(QuietHours, SubSecondInstantsCompareExactly) {
  const auto p = berlin(hm(22), hm(7));
  EXPECT_TRUE(quiet_hours_at(p, utc(2026, 1, 16, 6h) - 1ms).quiet);
  EXPECT_FALSE(quiet_hours_at(p, utc(2026, 1, 15, 21h) - 1ms).quiet);
}

TEST(TimeZones, KnownAndUnknownNames) {
  EXPECT_EQ(time_zone_problem("Europe/Berlin"), "");
  EXPECT_EQ(time_zone_problem("UTC"), "");
  EXPECT_EQ(time_zone_problem("America/Argentina/Buenos_Aires"), "");
  EXPECT_NE(time_zone_problem("Europe/Berln"), "");
  EXPECT_NE(time_zone_problem(""), "");
  EXPECT_NE(time_zone_problem("../../etc/passwd"), "");
}

}  // namespace
}  // namespace bellhop::gateway
