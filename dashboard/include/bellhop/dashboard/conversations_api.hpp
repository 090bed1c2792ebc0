#pragma once

#include "bellhop/core/config.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/core/services.hpp"

namespace bellhop::gateway {

// GET /v1/properties/{id}/conversations and GET /v1/conversations/{id}/messages: what a staff
// dashboard loads on start and after `subscribed {recovered:false}`. Staff JWT as Bearer token.
// Everything the handlers use must outlive the router.
void add_conversation_routes(router& routes, const services& svc, const contract::key_space& keys,
                             const config& cfg, metrics_registry& metrics);

}  // namespace bellhop::gateway
