#pragma once

#include <functional>
#include <string_view>

#include "bellhop/server/http_types.hpp"
#include "bellhop/server/responder.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// Admits a request to the admin API, everything under /v1/admin/ (docs/console.md, "Admin
// API"):
// - an Authorization header: it must be "Bearer <admin_token>" (auth.admin_token, compared in
//   constant time; a staff token is never an admin's), else 401;
// - else the console's session cookie through `lookup` (authenticate_staff: a request that
//   changes state needs the session's X-CSRF-Token), and the session's user must have the role
//   admin: a staff session is 403 `forbidden`;
// - neither: 401.
// Admitted, `then` runs with the responder (at once for the token, on the responder's executor
// after a session lookup); refused, the refusal is sent and `then` never runs.
void authorize_admin(const request& req, responder res, std::string_view admin_token,
                     const session_lookup& lookup, std::function<void(responder)> then);

}  // namespace bellhop::gateway
