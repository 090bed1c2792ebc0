#include "bellhop/server/router.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

struct segment {
  std::string text;  // literal text, or the parameter name
  bool param = false;
};

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  // `path` starts with '/'; each part is what follows one '/'.
  std::size_t pos = 1;
  while (true) {
    const auto next = path.find('/', pos);
    if (next == std::string_view::npos) {
      parts.push_back(path.substr(pos));
      return parts;
    }
    parts.push_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = hex_value(s[i + 1]);
    const int lo = hex_value(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// Literal beats parameter at the first position where two patterns differ.
bool more_specific(const std::vector<segment>& a, const std::vector<segment>& b) {
  const auto n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i].param != b[i].param) return !a[i].param;
  }
  return false;
}

}  // namespace

struct router::route_entry {
  std::string pattern;
  std::vector<segment> segments;
  std::vector<std::pair<http::verb, route_handler>> methods;

  // Parameter values if `parts` matches this pattern.
  std::optional<path_params> match(const std::vector<std::string_view>& parts) const {
    if (parts.size() != segments.size()) return std::nullopt;
    path_params params;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (!segments[i].param) {
        if (parts[i] != segments[i].text) return std::nullopt;
        continue;
      }
      if (parts[i].empty()) return std::nullopt;
      auto value = percent_decode(parts[i]);
      if (!value) return std::nullopt;
      params.emplace_back(segments[i].text, std::move(*value));
    }
    return params;
  }

  // HEAD runs the GET handler unless HEAD has one of its own; the session drops the body.
  const route_handler* handler_for(http::verb method) const {
    for (const auto& [verb, handler] : methods) {
      if (verb == method) return &handler;
    }
    return method == http::verb::head ? handler_for(http::verb::get) : nullptr;
  }
};

router::router() = default;
router::~router() = default;
router::router(router&&) noexcept = default;
router& router::operator=(router&&) noexcept = default;

void router::add(http::verb method, std::string path_pattern, route_handler handler) {
  if (path_pattern.empty() || path_pattern.front() != '/') {
    throw std::invalid_argument("route pattern must start with '/': " + path_pattern);
  }
  if (!handler) throw std::invalid_argument("route " + path_pattern + " has no handler");
  std::vector<segment> segments;
  for (const auto part : split_path(path_pattern)) {
    const bool open = part.starts_with('{');
    const bool close = part.ends_with('}');
    if (open || close) {
      const auto name = part.size() >= 2 ? part.substr(1, part.size() - 2) : std::string_view{};
      if (!open || !close || name.empty() || name.find_first_of("{}") != std::string_view::npos) {
        throw std::invalid_argument("malformed parameter segment in route " + path_pattern);
      }
      segments.push_back({std::string(name), true});
    } else {
      if (part.find_first_of("{}?#") != std::string_view::npos) {
        throw std::invalid_argument("malformed route pattern " + path_pattern);
      }
      segments.push_back({std::string(part), false});
    }
  }

  auto same = std::find_if(routes_.begin(), routes_.end(),
                           [&](const auto& r) { return r->pattern == path_pattern; });
  if (same == routes_.end()) {
    auto entry = std::make_unique<route_entry>();
    entry->pattern = std::move(path_pattern);
    entry->segments = std::move(segments);
    // Keep routes ordered most specific first; equal ones in insertion order.
    const auto pos = std::find_if(routes_.begin(), routes_.end(), [&](const auto& r) {
      return more_specific(entry->segments, r->segments);
    });
    same = routes_.insert(pos, std::move(entry));
  } else if ((*same)->handler_for(method) != nullptr) {
    throw std::invalid_argument("duplicate route " + std::string(http::to_string(method)) + " " +
                                path_pattern);
  }
  (*same)->methods.emplace_back(method, std::move(handler));
  std::sort((*same)->methods.begin(), (*same)->methods.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
}

route_match router::match(http::verb method, std::string_view target) const {
  route_match result;
  const auto path = target.substr(0, target.find_first_of("?#"));
  if (path.empty() || path.front() != '/') return result;
  const auto parts = split_path(path);

  const route_entry* first_match = nullptr;
  std::vector<http::verb> allowed;
  for (const auto& entry : routes_) {
    auto params = entry->match(parts);
    if (!params) continue;
    if (const auto* handler = entry->handler_for(method)) {
      result.handler = handler;
      result.name = entry->pattern;
      result.params = std::move(*params);
      return result;
    }
    if (first_match == nullptr) first_match = entry.get();
    for (const auto& m : entry->methods) allowed.push_back(m.first);
  }
  if (first_match == nullptr) return result;

  result.name = first_match->pattern;
  std::sort(allowed.begin(), allowed.end());
  allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
  for (const auto verb : allowed) {
    if (!result.allow.empty()) result.allow += ", ";
    result.allow += http::to_string(verb);
  }
  return result;
}

response router::not_routed(const request& req, const route_match& match) {
  if (match.allow.empty()) {
    return json_error(req, http::status::not_found, "not_found", "no such resource");
  }
  auto res = json_error(req, http::status::method_not_allowed, "method_not_allowed",
                        "method " + std::string(req.method_string()) + " is not allowed here");
  res.set(http::field::allow, match.allow);
  return res;
}

}  // namespace bellhop::gateway
