#pragma once

// Small text and HTTP helpers the channel adapters share (internal to channels/).

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace bellhop::channels::detail {

inline std::string_view trim(std::string_view v) {
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!v.empty() && space(v.front())) v.remove_prefix(1);
  while (!v.empty() && space(v.back())) v.remove_suffix(1);
  return v;
}

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

inline bool all_digits(std::string_view v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A provider's Retry-After (delta-seconds only: an HTTP date would need a clock), capped at an
// hour; nullopt when absent or not a positive number of seconds.
inline std::optional<std::chrono::milliseconds> retry_after_header(
    const std::map<std::string, std::string>& headers) {
  auto it = headers.find("retry-after");
  if (it == headers.end()) return std::nullopt;
  const auto v = trim(it->second);
  if (!all_digits(v) || v.size() > 9) return std::nullopt;
  long long secs = 0;
  std::from_chars(v.data(), v.data() + v.size(), secs);
  if (secs <= 0) return std::nullopt;
  return std::chrono::seconds(std::min(secs, 3600LL));
}

}  // namespace bellhop::channels::detail
