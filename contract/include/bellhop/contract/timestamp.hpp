#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace bellhop::contract {

// RFC 3339 date-time as Bellhop and providers write it: 2026-11-27T21:00:00.123Z, the fraction
// optional (microseconds kept), Z or ±hh:mm. nullopt for anything else.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

// UTC with milliseconds: 2026-11-27T21:00:00.123Z
std::string format_rfc3339(std::chrono::system_clock::time_point t);

}  // namespace bellhop::contract
