#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/core/config.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/transport/provider_client.hpp"

namespace bellhop::gateway {

struct rate_limits;

// The outbound lanes of the configured channels: how each one sends (its adapter's request,
// made by `client`, its answer classified by the adapter) and which rate limits each message
// passes first (the providers' policies of docs/ratelimit.md, by name from `limits`). Email
// replies look up the guest's thread (subject, Message-ID) through `redis` before they go.
std::vector<outbound_channel> make_outbound_channels(const config& cfg,
                                                     std::shared_ptr<provider_client> client,
                                                     rate_limits* limits, broker::broker& redis,
                                                     const contract::key_space& keys);

}  // namespace bellhop::gateway
