#pragma once

#include "bellhop/console/options.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// The admin page's API beside the outbound queue operations (docs/console.md, "Admin API"), for
// the admin token or an admin's console session (`sessions`; server/admin_auth.hpp):
// - GET /v1/admin/overview: every figure of the admin page in one answer (the inbound queue and
//   its AI engines, the outbound queues, the channel accounts' health, the rate-limit policies,
//   Redis, the messages in and out per minute over the last hour);
// - GET /v1/admin/inbound/dead?limit=N: the newest inbound dead letters;
// - POST /v1/admin/inbound/dead/retry: all of them back on inbound:messages, atomically.
// Everything used must outlive the router.
void add_admin_routes(router& routes, const services& svc, const contract::key_space& keys,
                      const console_options& options, session_lookup sessions);

}  // namespace bellhop::gateway
