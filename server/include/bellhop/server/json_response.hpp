#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "bellhop/ratelimit/limiter.hpp"
#include "bellhop/server/http_types.hpp"

namespace bellhop::gateway {

// The error body of docs/http-api.md: {"error":{"code":"…","message":"…","field":"…"}}, `field`
// omitted when empty. Content-Type application/json; version and keep-alive follow `req`.
response json_error(const request& req, http::status status, std::string_view code,
                    std::string_view message, std::string_view field = {});

// 503 {"error":{"code":…,"message":…}} with Retry-After: `retry_after`: what the request needs
// (Redis, a free connection) is not there now, nothing was done, the client retries later
// (docs/http-api.md). Every "503 + Retry-After" answer is made here.
response service_unavailable(const request& req, std::string_view code, std::string_view message,
                             std::chrono::seconds retry_after);

// 429 {"error":{"code":…,"message":…}} with Retry-After: `retry_after`: the client holds too
// much (connections from its address); it lets some go and retries.
response too_many_requests(const request& req, std::string_view code, std::string_view message,
                           std::chrono::seconds retry_after);

// 503 {"error":{"code":"redis_full",…}} with Retry-After: Redis reached its maxmemory and refuses
// writes (noeviction); nothing was stored, nothing stored before is lost (docs/http-api.md).
// Every write path answers a broker::is_out_of_memory refusal with this.
response redis_full(const request& req);
inline constexpr std::string_view redis_full_code = "redis_full";
inline constexpr std::string_view redis_full_message =
    "Redis is full (maxmemory reached): nothing was stored; retry later";

// The parts of a request a late response needs (version, keep-alive), detached from the
// request itself, which belongs to the connection: for handlers that answer asynchronously.
request request_shell(const request& req);

// A response whose body is already serialized JSON.
response json_response(const request& req, http::status status, std::string body);

// RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds, rounded up) of a decision,
// plus Retry-After (seconds, rounded up, at least 1) when it refused.
void set_ratelimit_headers(response& res, const ratelimit::decision& d);

}  // namespace bellhop::gateway
