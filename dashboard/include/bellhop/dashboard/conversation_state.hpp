#pragma once

#include <boost/asio/any_io_executor.hpp>

#include "bellhop/contract/conversation_change.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/dashboard/options.hpp"

namespace bellhop::gateway {

// Writes a conversation's state changes (handoff, release, read; docs/properties.md,
// "Conversation state") with dashboard/lua/conversation_change.lua: the record, the
// conversation.updated event and its publish in one script. Answers "unavailable" while
// `svc.redis` is not set or Redis does not answer. `svc` and `keys` must outlive it.
class conversation_writer {
 public:
  conversation_writer(const services& svc, const contract::key_space& keys,
                      const dashboard_options& options);
  // Calls back once, on `ex`.
  void change(contract::conversation_change c, boost::asio::any_io_executor ex,
              contract::conversation_change_callback done) const;

 private:
  const services& svc_;
  const contract::key_space& keys_;
  const dashboard_options options_;
  const broker::script script_;
};

// The writer as the seam the dashboards' WebSocket takes (realtime/), answering on `ex`.
contract::conversation_changer make_conversation_changer(
    std::shared_ptr<const conversation_writer> writer, boost::asio::any_io_executor ex);

}  // namespace bellhop::gateway
