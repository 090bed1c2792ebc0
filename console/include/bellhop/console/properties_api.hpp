#pragma once

#include "bellhop/console/options.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// GET /v1/properties (docs/http-api.md): the configured properties a staff token or console
// session covers, {id, name, time_zone} each: what an inbox for every property ("*") opens.
// `sessions` must outlive the router.
void add_properties_route(router& routes, const console_options& options,
                          const session_lookup& sessions);

}  // namespace bellhop::gateway
