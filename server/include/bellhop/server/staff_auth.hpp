#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/server/http_types.hpp"

// Who calls a staff or admin endpoint (docs/console.md, "Sign-in"): the bearer of a staff token
// (a JWT, docs/realtime.md) or a console session (a cookie, looked up in Redis by the console
// module). The flows check both through authenticate_staff(); the app hands them the console's
// lookup as a session_lookup, so no flow includes the console.

namespace bellhop::gateway {

struct staff_principal {
  std::string subject;                            // the token's "sub" / the console user's name
  std::vector<std::string> properties;            // {"*"} = all
  bool admin = false;                             // console role "admin" (a token: never)
  std::chrono::system_clock::time_point expires;  // token "exp" / the session's end
  std::string session_id;  // the console session's id ("" for a token); never the cookie value
  std::string csrf_token;  // the console session's CSRF token ("" for a token)

  bool allows(std::string_view property_id) const;
};

// The console's session lookup: the session cookie's value -> its principal, or nullopt when the
// session is unknown, expired, or its user is disabled. Calls back once, on any thread; an error
// reaching Redis is `unavailable`.
enum class session_status { ok, none, unavailable };
using session_callback = std::function<void(session_status, std::optional<staff_principal>)>;
using session_lookup = std::function<void(std::string cookie_value, session_callback)>;

inline constexpr std::string_view session_cookie_name = "bellhop_session";
inline constexpr std::string_view csrf_header_name = "X-CSRF-Token";

// The value of the session cookie in a Cookie header ("" when absent). Bounded: a header over
// 8 KiB or a value over 256 bytes counts as absent.
std::string_view session_cookie(std::string_view cookie_header);

// Whether the request's Origin header, when present, names this host (http(s)://<Host>): a page
// of another site must not act with the cookie (CSRF, cross-site WebSocket hijacking).
bool same_origin(const request& req);

// Why a request was refused: the HTTP answer to give (json_error(status, code, message)).
struct auth_failure {
  http::status status = http::status::unauthorized;
  std::string code = "unauthorized";
  std::string message;
};

// Authenticates a staff request:
// - "Authorization: Bearer <staff token>" present: the token (verify_staff_token, `jwt_secret`);
// - else the session cookie, through `lookup` (null: sessions are not accepted). A request by
//   cookie that changes state (any method but GET/HEAD) must also carry X-CSRF-Token equal to
//   the session's (compared in constant time), and an Origin header, when present, must be
//   this host's (http(s)://<Host>): 403 `csrf_failed` otherwise;
// - neither: 401 `unauthorized`.
// A lookup that cannot reach Redis is 503 `unavailable`. `done` runs once, on `ex`.
using staff_auth_result = boost::system::result<staff_principal, auth_failure>;
[[noreturn]] void throw_exception_from_error(const auth_failure& f,
                                             const boost::source_location& loc);
void authenticate_staff(const request& req, std::string_view jwt_secret,
                        const session_lookup& lookup, boost::asio::any_io_executor ex,
                        std::function<void(staff_auth_result)> done);

// The refusal as a response (401 carries WWW-Authenticate: Bearer; 503 Retry-After: 1).
response auth_refusal(const request& req, const auth_failure& f);

}  // namespace bellhop::gateway
