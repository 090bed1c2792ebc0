#pragma once

#include "bellhop/console/options.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// The console's routes (docs/console.md): sign-in (POST /v1/auth/login, /logout, GET
// /v1/auth/me) and the pages (GET /console/, /admin/ and their assets). Returns the session
// lookup the other flows authenticate cookies with (server/staff_auth.hpp). Everything the
// handlers use must outlive the router.
session_lookup add_console_routes(router& routes, const services& svc,
                                  const contract::key_space& keys, const console_options& options,
                                  metrics_registry& metrics);

}  // namespace bellhop::gateway
