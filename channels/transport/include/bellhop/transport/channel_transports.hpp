#pragma once

#include <memory>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/ingest.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/transport/options.hpp"
#include "bellhop/transport/provider_client.hpp"

// The channels' transports: each channel (channels/transport/src/<channel>.cpp) owns its
// webhook routes and its sender lane, next to its adapter (channels/src/<channel>.cpp), which
// owns the protocol and the provider's published rate limits. These two functions compose them.

namespace bellhop::gateway {

struct rate_limits;

// The providers' webhooks: /v1/webhooks/whatsapp (GET verification, POST events),
// /v1/webhooks/twilio/sms and /status, /v1/webhooks/email. Each one is verified by its channel
// adapter, its guest messages go through the same atomic ingest as POST /v1/messages/inbound
// (`ingest`), its delivery statuses move the sent messages' status records forward, and only
// then is it answered 200 (503 when anything was not stored: the provider retries, and dedup
// makes the retry harmless). A channel without its section configured refuses its webhook.
void add_webhook_routes(router& routes, const services& svc, const contract::key_space& keys,
                        const transport_options& opts, inbound_sink ingest,
                        metrics_registry& metrics);

// The outbound lanes of the configured channels: how each one sends (its adapter's request,
// made by `client`, its answer classified by the adapter) and which rate limits each message
// passes first (the providers' policies of docs/ratelimit.md, by name from `limits`), each with
// the property it belongs to. Email replies look up the guest's thread (subject, Message-ID)
// through `redis` before they go.
std::vector<outbound_channel> make_outbound_channels(const transport_options& opts,
                                                     std::shared_ptr<provider_client> client,
                                                     rate_limits* limits, broker::broker& redis,
                                                     const contract::key_space& keys);

}  // namespace bellhop::gateway
