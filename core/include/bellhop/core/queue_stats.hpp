#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"

namespace bellhop::gateway {

// The outbound queues' figures as GET /v1/admin/queues gives them (docs/outbound.md, "Queue
// operations"), shared by the outbound API and the console's overview: per channel
// outbound_queue_stats.lua (all of them sent at once, so pipelined), then one JSON array of
// {"channel","waiting","active","delayed","dead","quiet","paused","counters":{…}}, sorted by
// channel. `done` runs once, on `ex`, with the array's text, or nullopt when Redis did not
// answer every channel.
void read_queue_stats(broker::broker& redis, const contract::key_space& keys,
                      const std::vector<std::string>& channels, boost::asio::any_io_executor ex,
                      std::function<void(std::optional<std::string>)> done);

}  // namespace bellhop::gateway
