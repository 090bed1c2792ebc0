#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "bellhop/core/property.hpp"

// A property's quiet hours at a given instant (docs/properties.md, "Quiet hours"). The hours
// are local wall-clock times in the property's time zone, daylight saving included, read from
// the system's tz database (package tzdata):
//  - a start or end that does not exist that day (inside the hour skipped in spring) is the
//    instant the clocks jump, the first one after it;
//  - a start or end that exists twice (inside the hour repeated in autumn) is the first time
//    the clock shows it;
//  - start is inside the quiet hours, end is not.

namespace bellhop::gateway {

struct quiet_state {
  bool quiet = false;
  std::chrono::system_clock::time_point until{};  // when they end (quiet only); always > now
};

// Whether `now` falls inside `p`'s quiet hours and when they end. A property without quiet
// hours is never quiet; neither is one whose time zone the tz database does not know (the
// config loader refuses those, see time_zone_problem).
quiet_state quiet_hours_at(const property& p, std::chrono::system_clock::time_point now);

// What is wrong with an IANA time zone name ("" = the tz database knows it).
std::string time_zone_problem(std::string_view name);

}  // namespace bellhop::gateway
