#pragma once

#include <map>
#include <string>

#include "bellhop/core/adapter_auth.hpp"
#include "bellhop/core/config.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/core/services.hpp"

namespace bellhop::gateway {

// POST /v1/messages/outbound (adapter keys) and the queue operations under /v1/admin/queues
// (the admin token): stats, pause and resume, retry and purge of dead letters. `channels`:
// the channels Bellhop sends on (configured ones), each with the property it belongs to: a
// message of another property is refused. Everything used must outlive the router.
void add_outbound_routes(router& routes, const services& svc, const contract::key_space& keys,
                         const config& cfg, const adapter_auth& auth,
                         std::map<std::string, std::string> channels);

}  // namespace bellhop::gateway
