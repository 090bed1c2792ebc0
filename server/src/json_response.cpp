#include "bellhop/server/json_response.hpp"

#include "bellhop/core/rate_limits.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace bellhop::gateway {
namespace {

void string_value(rapidjson::Writer<rapidjson::StringBuffer>& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace

std::string json_quote(std::string_view s) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  string_value(w, s);
  return {out.GetString(), out.GetSize()};
}

response json_error(const request& req, http::status status, std::string_view code,
                    std::string_view message, std::string_view field) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  string_value(w, code);
  w.Key("message");
  string_value(w, message);
  if (!field.empty()) {
    w.Key("field");
    string_value(w, field);
  }
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

response redis_full(const request& req) {
  auto res =
      json_error(req, http::status::service_unavailable, redis_full_code, redis_full_message);
  res.set(http::field::retry_after, "5");
  return res;
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
