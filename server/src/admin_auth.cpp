#include "bellhop/server/admin_auth.hpp"

#include <memory>
#include <string>
#include <utility>

#include "bellhop/core/bearer.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {

void authorize_admin(const request& req, responder res, std::string_view admin_token,
                     const session_lookup& lookup, std::function<void(responder)> then) {
  const auto authorization = req[http::field::authorization];
  const bool has_cookie = !session_cookie(req[http::field::cookie]).empty();
  if (!authorization.empty() || !has_cookie || !lookup) {
    if (bearer_matches(authorization, admin_token)) return then(std::move(res));
    std::string why;
    if (admin_token.empty())
      why = lookup ? "auth.admin_token is not configured: sign in as an admin"
                   : "auth.admin_token is not configured: admin requests are refused";
    else
      why = std::string("missing or wrong admin token: send Authorization: Bearer <token>") +
            (lookup ? ", or sign in as an admin" : "");
    auto refusal = json_error(req, http::status::unauthorized, "unauthorized", why);
    refusal.set(http::field::www_authenticate, "Bearer");
    return res.send(std::move(refusal));
  }
  // No Authorization header: authenticate_staff goes by the cookie alone (a staff token is
  // never an admin's, so it is not tried at all).
  auto then_shared = std::make_shared<std::function<void(responder)>>(std::move(then));
  authenticate_staff(
      req, "", lookup, res.executor(),
      [res, then_shared, shell = request_shell(req)](staff_auth_result r) {
        if (!r) return res.send(auth_refusal(shell, r.error()));
        if (!r->admin)
          return res.send(json_error(shell, http::status::forbidden, "forbidden", "admins only"));
        (*then_shared)(res);
      });
}

}  // namespace bellhop::gateway
