#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <string>

#include "bellhop/core/inbound_message.hpp"

// The seam between the inbound flow and the channels that bring guest messages in (webhooks,
// web chat): the app hands the inbound flow's ingest to the channel transports as an
// inbound_sink (docs/architecture.md).

namespace bellhop::gateway {

// What became of one message handed to the ingest script.
struct ingest_outcome {
  enum class result {
    queued,       // on inbound:messages with its event; `id` is its id
    duplicate,    // its external id was seen before; `id` is the first message's id
    refused,      // Redis answered but would not store it (nothing of it kept); `detail` says why
    unavailable,  // no answer from Redis (down, timed out, stopping); `detail` says why
    full,         // Redis is at maxmemory and refused it (nothing of it kept): 503 redis_full
  };
  result what = result::unavailable;
  std::string id;
  std::string detail;  // also set for `queued` when a step after the queue and the history
                       // (status record, conversation, publish) was refused
};

// The atomic ingest of a validated guest message (the one of POST /v1/messages/inbound), for
// the channels' webhooks: `done` runs on `ex` once Redis answered.
using inbound_sink = std::function<void(inbound_message msg, boost::asio::any_io_executor ex,
                                        std::function<void(ingest_outcome)> done)>;

}  // namespace bellhop::gateway
