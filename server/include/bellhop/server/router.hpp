#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/server/http_types.hpp"
#include "bellhop/server/responder.hpp"

namespace bellhop::gateway {

// Handlers run on the connection's strand and must not block; they complete through the
// responder, now or later, from any thread. An exception escaping a handler becomes a 500.
using route_handler = std::function<void(const request&, responder)>;

// The outcome of matching a request line against the routes.
struct route_match {
  const route_handler* handler = nullptr;  // null: 404 or 405, see not_routed()
  std::string_view name = "unmatched";     // metrics label: the route pattern, never the raw path
  path_params params;
  std::string allow;  // for a known path with another method: e.g. "GET, POST"
};

// Maps method + path to handlers. Patterns are exact paths whose segments are either literal
// or `{name}`, which matches one non-empty segment (e.g. "/v1/messages/{id}"). The query string
// plays no part. Where several patterns match a path, the one with a literal segment at the
// first differing position wins, unless only another one has a handler for the method.
// Built at startup, then shared read-only (const) by every connection.
class router {
 public:
  router();
  ~router();
  router(router&&) noexcept;
  router& operator=(router&&) noexcept;

  // Throws std::invalid_argument for a malformed pattern or a duplicate method + pattern
  // (programming errors found at startup, never on the request path).
  void add(http::verb method, std::string path_pattern, route_handler handler);

  route_match match(http::verb method, std::string_view target) const;

  // The answer for a request without handler: 404 `not_found`, or 405 `method_not_allowed`
  // with an Allow header when the path is known.
  static response not_routed(const request& req, const route_match& match);

 private:
  struct route_entry;
  std::vector<std::unique_ptr<route_entry>> routes_;  // most specific first
};

}  // namespace bellhop::gateway
