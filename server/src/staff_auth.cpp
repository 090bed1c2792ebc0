#include "bellhop/server/staff_auth.hpp"

#include <boost/asio/post.hpp>
#include <memory>
#include <stdexcept>

#include "bellhop/contract/secrets.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "bellhop/core/bearer.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using sys_clock = std::chrono::system_clock;

constexpr std::size_t max_cookie_header = 8192;
constexpr std::size_t max_cookie_value = 256;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

auth_failure failure(http::status status, std::string code, std::string message) {
  return {status, std::move(code), std::move(message)};
}

bool changes_state(http::verb v) {
  return v != http::verb::get && v != http::verb::head;
}

}  // namespace

bool same_origin(const request& req) {
  const auto origin = req[http::field::origin];
  if (origin.empty()) return true;
  const auto host = req[http::field::host];
  if (host.empty()) return false;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (origin.size() == scheme.size() + host.size() && origin.substr(0, scheme.size()) == scheme &&
        origin.substr(scheme.size()) == host)
      return true;
  }
  return false;
}

bool staff_principal::allows(std::string_view property_id) const {
  for (const auto& p : properties)
    if (p == "*" || p == property_id) return true;
  return false;
}

std::string_view session_cookie(std::string_view header) {
  if (header.size() > max_cookie_header) return {};
  while (!header.empty()) {
    const auto semi = header.find(';');
    const auto pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != session_cookie_name) continue;
    auto value = trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    return value.size() <= max_cookie_value ? value : std::string_view{};
  }
  return {};
}

void authenticate_staff(const request& req, std::string_view jwt_secret,
                        const session_lookup& lookup, boost::asio::any_io_executor ex,
                        std::function<void(staff_auth_result)> done) {
  const auto authorization = req[http::field::authorization];
  if (!authorization.empty()) {
    const auto token = trim(bearer_credentials(authorization).value_or(std::string_view{}));
    auto claims = contract::verify_staff_token(token, jwt_secret, sys_clock::now());
    if (!claims) {
      std::string message(contract::describe(claims.error()));
      if (claims.error() == contract::token_error::missing)
        message += ": send Authorization: Bearer <staff token>";
      return done(failure(http::status::unauthorized, "unauthorized", std::move(message)));
    }
    staff_principal p;
    p.subject = std::move(claims->subject);
    p.properties = std::move(claims->properties);
    p.expires = claims->expires;
    return done(std::move(p));
  }
  const auto cookie = session_cookie(req[http::field::cookie]);
  if (cookie.empty() || !lookup) {
    return done(failure(http::status::unauthorized, "unauthorized",
                        "missing token: send Authorization: Bearer <staff token>, or sign in"));
  }
  const bool check_csrf = changes_state(req.method());
  if (check_csrf && !same_origin(req)) {
    return done(
        failure(http::status::forbidden, "csrf_failed", "the Origin header names another site"));
  }
  std::string csrf(req[csrf_header_name]);
  auto shared_done = std::make_shared<std::function<void(staff_auth_result)>>(std::move(done));
  lookup(std::string(cookie), [ex, shared_done, check_csrf, csrf = std::move(csrf)](
                                  session_status status, std::optional<staff_principal> p) {
    staff_auth_result out =
        failure(http::status::unauthorized, "unauthorized", "the session has ended: sign in again");
    if (status == session_status::unavailable) {
      out = failure(http::status::service_unavailable, "unavailable",
                    "Redis is unavailable; retry later");
    } else if (status == session_status::ok && p) {
      if (check_csrf && (csrf.empty() || !contract::secrets_equal(csrf, p->csrf_token)))
        out = failure(http::status::forbidden, "csrf_failed",
                      "missing or wrong X-CSRF-Token header (GET /v1/auth/me gives it)");
      else
        out = std::move(*p);
    }
    boost::asio::post(
        ex, [shared_done, out = std::move(out)]() mutable { (*shared_done)(std::move(out)); });
  });
}

response auth_refusal(const request& req, const auth_failure& f) {
  if (f.status == http::status::service_unavailable)
    return service_unavailable(req, f.code, f.message, std::chrono::seconds(1));
  auto res = json_error(req, f.status, f.code, f.message);
  if (f.status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

// Lets staff_auth_result::value() throw.
[[noreturn]] void throw_exception_from_error(const auth_failure& f, const boost::source_location&) {
  throw std::runtime_error(f.message);
}

}  // namespace bellhop::gateway
