#include "bellhop/core/quiet_hours.hpp"

#include <date/tz.h>

#include <array>
#include <exception>

namespace bellhop::gateway {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

const date::time_zone* find_zone(std::string_view name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {  // unknown name, or no readable tz database
    return nullptr;
  }
}

}  // namespace

quiet_state quiet_hours_at(const property& p, std::chrono::system_clock::time_point now) {
  if (!p.quiet || p.quiet->start_min == p.quiet->end_min) return {};
  const date::time_zone* zone = find_zone(p.time_zone);
  if (zone == nullptr) return {};
  const auto start = minutes(p.quiet->start_min);
  const auto end = minutes(p.quiet->end_min);
  const bool overnight = start > end;  // 22:00-07:00 ends on the next day
  // The local day of `now` may have its window begin the day before (overnight) or, where the
  // clocks go back across midnight, the day after: try the three.
  const auto today = date::floor<date::days>(zone->to_local(date::floor<seconds>(now)));
  for (const auto day : std::array{today - date::days(1), today, today + date::days(1)}) {
    // choose::earliest maps a repeated local time to its first instant and a skipped one to
    // the instant the clocks jump: the order of local times is kept.
    const auto from = zone->to_sys(day + start, date::choose::earliest);
    const auto to = zone->to_sys(day + (overnight ? date::days(1) : date::days(0)) + end,
                                 date::choose::earliest);
    if (from <= now && now < to) return {true, to};
  }
  return {};
}

std::string time_zone_problem(std::string_view name) {
  try {
    date::get_tzdb();
  } catch (const std::exception& e) {
    return std::string("cannot be checked: the tz database cannot be read (package tzdata): ") +
           e.what();
  }
  if (find_zone(name) == nullptr) {
    return "is not a time zone of the tz database (an IANA name such as Europe/Berlin)";
  }
  return "";
}

}  // namespace bellhop::gateway
