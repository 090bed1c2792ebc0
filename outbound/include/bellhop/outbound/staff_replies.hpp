#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/contract/staff_reply.hpp"
#include "bellhop/core/rate_limits.hpp"
#include "bellhop/core/redis_memory.hpp"
#include "bellhop/outbound/options.hpp"

namespace bellhop::gateway {

// Queues staff replies from dashboards (the WebSocket `reply` frame) on outbound:<channel> of
// the conversation, once per (sub, client_msg_id): staff_reply.lua, after reading the
// conversation's record for its channel and guest address. With `limits` (and a
// ratelimit.staff_replies policy), a session over its policy is refused with "rate_limited";
// with `memory`, every reply is refused with "redis_full" while Redis is nearly full.
contract::reply_queuer make_staff_reply_queuer(broker::broker& redis,
                                               const contract::key_space& keys,
                                               const outbound_options& options, rate_limits* limits,
                                               boost::asio::any_io_executor ex,
                                               const redis_memory* memory = nullptr);

}  // namespace bellhop::gateway
