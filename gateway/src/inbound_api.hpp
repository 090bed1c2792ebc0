#pragma once

#include "bellhop/gateway/adapter_auth.hpp"
#include "bellhop/gateway/config.hpp"
#include "bellhop/gateway/keys.hpp"
#include "bellhop/gateway/metrics.hpp"
#include "bellhop/gateway/router.hpp"
#include "services.hpp"

namespace bellhop::gateway {

// POST /v1/messages/inbound (channel adapters) and GET /v1/messages/{id} (key holders).
// Everything the handlers use must outlive the router.
void add_inbound_routes(router& routes, const services& svc, const key_space& keys,
                        const config& cfg, const adapter_auth& auth, metrics_registry& metrics);

}  // namespace bellhop::gateway
