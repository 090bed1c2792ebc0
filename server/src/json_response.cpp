#include "bellhop/server/json_response.hpp"

#include "bellhop/core/rate_limits.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {

response json_error(const request& req, http::status status, std::string_view code,
                    std::string_view message, std::string_view field) {
  rapidjson::StringBuffer buf;
  json::writer w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  json::put(w, "code", code);
  json::put(w, "message", message);
  if (!field.empty()) json::put(w, "field", field);
  w.EndObject();
  w.EndObject();
  return json_response(req, status, std::string(buf.GetString(), buf.GetSize()));
}

response json_response(const request& req, http::status status, std::string body) {
  response res{status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

namespace {

response retry_later(const request& req, http::status status, std::string_view code,
                     std::string_view message, std::chrono::seconds retry_after) {
  auto res = json_error(req, status, code, message);
  res.set(http::field::retry_after, std::to_string(retry_after.count()));
  return res;
}

}  // namespace

response service_unavailable(const request& req, std::string_view code, std::string_view message,
                             std::chrono::seconds retry_after) {
  return retry_later(req, http::status::service_unavailable, code, message, retry_after);
}

response too_many_requests(const request& req, std::string_view code, std::string_view message,
                           std::chrono::seconds retry_after) {
  return retry_later(req, http::status::too_many_requests, code, message, retry_after);
}

response redis_full(const request& req) {
  return service_unavailable(req, redis_full_code, redis_full_message, std::chrono::seconds(5));
}

request request_shell(const request& req) {
  request shell;
  shell.version(req.version());
  shell.keep_alive(req.keep_alive());
  return shell;
}

void set_ratelimit_headers(response& res, const ratelimit::decision& d) {
  res.set("RateLimit-Limit", std::to_string(d.limit));
  res.set("RateLimit-Remaining", std::to_string(d.remaining));
  res.set("RateLimit-Reset", std::to_string(ceil_seconds(d.reset_ms)));
  if (!d.allowed) {
    // -1 (never: the cost is above the policy's capacity) has no honest Retry-After; a day.
    res.set(http::field::retry_after,
            std::to_string(d.retry_after_ms < 0 ? 86400 : ceil_seconds(d.retry_after_ms, 1)));
  }
}

}  // namespace bellhop::gateway
