#pragma once

#include "bellhop/core/config.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/core/ingest.hpp"
#include "bellhop/core/services.hpp"

namespace bellhop::gateway {

// The providers' webhooks: /v1/webhooks/whatsapp (GET verification, POST events),
// /v1/webhooks/twilio/sms and /status, /v1/webhooks/email. Each one is
// verified by its channel adapter, its guest messages go through the same atomic ingest as
// POST /v1/messages/inbound, its delivery statuses move the sent messages' status records
// forward, and only then is it answered 200 (503 when anything was not stored: the provider
// retries, and dedup makes the retry harmless). A channel without its secrets configured
// refuses its webhook.
void add_webhook_routes(router& routes, const services& svc, const contract::key_space& keys,
                        const config& cfg, inbound_sink ingest, metrics_registry& metrics);

}  // namespace bellhop::gateway
