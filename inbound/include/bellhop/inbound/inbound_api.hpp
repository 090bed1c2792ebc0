#pragma once

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/adapter_auth.hpp"
#include "bellhop/core/ingest.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/inbound/options.hpp"
#include "bellhop/server/router.hpp"

namespace bellhop::gateway {

// POST /v1/messages/inbound (channel adapters) and GET /v1/messages/{id} (key holders).
// Everything the handlers use must outlive the router. Returns the ingest for webhooks.
inbound_sink add_inbound_routes(router& routes, const services& svc,
                                const contract::key_space& keys, const inbound_options& options,
                                const adapter_auth& auth, metrics_registry& metrics);

}  // namespace bellhop::gateway
