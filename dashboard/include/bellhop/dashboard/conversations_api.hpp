#pragma once

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/dashboard/options.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// GET /v1/properties/{id}/conversations and GET /v1/conversations/{id}/messages: what a staff
// dashboard loads on start and after `subscribed {recovered:false}`. A staff JWT as Bearer token
// or a console session (`sessions`, server/staff_auth.hpp; null: tokens only).
// Everything the handlers use must outlive the router.
void add_conversation_routes(router& routes, const services& svc, const contract::key_space& keys,
                             const dashboard_options& options, const session_lookup& sessions,
                             metrics_registry& metrics);

}  // namespace bellhop::gateway
