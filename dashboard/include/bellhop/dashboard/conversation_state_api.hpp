#pragma once

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/adapter_auth.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/dashboard/options.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// POST /v1/conversations/{id}/handoff, /release and /read (docs/http-api.md): an AI engine
// (adapter key) or a staff member (staff JWT, or a console session through `sessions`, with
// its CSRF token; null: tokens only) hands a conversation to staff or gives it back; staff mark
// it read. Everything the handlers use must outlive the router.
void add_conversation_state_routes(router& routes, const services& svc,
                                   const contract::key_space& keys,
                                   const dashboard_options& options, const adapter_auth& auth,
                                   const session_lookup& sessions, metrics_registry& metrics);

}  // namespace bellhop::gateway
