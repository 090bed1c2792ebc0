#pragma once

#include <map>
#include <string>

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/adapter_auth.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/outbound/options.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// POST /v1/messages/outbound (adapter keys) and the queue operations under /v1/admin/queues
// (the admin token, or an admin's console session through `sessions`: server/admin_auth.hpp):
// stats, pause and resume, the dead letters listed, retried and purged. A message for a
// channel of another property (options.channels) is refused. Everything used must outlive the
// router.
void add_outbound_routes(router& routes, const services& svc, const contract::key_space& keys,
                         const outbound_options& options, const adapter_auth& auth,
                         session_lookup sessions = {});

}  // namespace bellhop::gateway
