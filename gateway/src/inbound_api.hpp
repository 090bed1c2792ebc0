#pragma once

#include "bellhop/gateway/adapter_auth.hpp"
#include "bellhop/gateway/config.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/gateway/metrics.hpp"
#include "bellhop/gateway/router.hpp"
#include "ingest_batcher.hpp"
#include "services.hpp"

namespace bellhop::gateway {

// The atomic ingest of a validated guest message (the one of POST /v1/messages/inbound), for
// the channels' webhooks: `done` runs on `ex` once Redis answered.
using inbound_sink = std::function<void(inbound_message msg, boost::asio::any_io_executor ex,
                                        std::function<void(ingest_outcome)> done)>;

// POST /v1/messages/inbound (channel adapters) and GET /v1/messages/{id} (key holders).
// Everything the handlers use must outlive the router. Returns the ingest for webhooks.
inbound_sink add_inbound_routes(router& routes, const services& svc, const contract::key_space& keys,
                                const config& cfg, const adapter_auth& auth,
                                metrics_registry& metrics);

}  // namespace bellhop::gateway
