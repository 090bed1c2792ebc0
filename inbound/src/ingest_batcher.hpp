#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/core/ingest.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/redis_memory.hpp"
#include "bellhop/inbound/options.hpp"
#include "bellhop/ratelimit/limiter.hpp"

namespace bellhop::gateway {

// Group commit of the ingest script (lua/ingest.lua takes any number of messages). A message
// goes to Redis at once while fewer than `max_in_flight` calls are outstanding; otherwise it
// waits for the next call, which takes everything waiting (up to `max_batch` messages) as soon
// as a call returns. At low rates each call carries one message and nothing waits; under load
// calls carry many and share what a call costs Redis (dispatch, script setup, the MULTI/EXEC
// wrapped around its effects in the AOF) and Bellhop (one command, one reply). Calls are
// handed to the broker in the order their messages were submitted and the script takes a
// call's messages in order, so inbound:messages keeps the order of acceptance. A call that gets
// no answer (timeout, connection lost) takes the messages waiting with it: they are answered
// as it is, within the command timeout, instead of each waiting a timeout of its own.
//
// A message may carry a rate limit (the inbound API's policy per adapter key): the script
// decides it before anything else, in the order of submission, so the check costs no round trip
// of its own (docs/ratelimit.md). Decisions are counted through limiter::count. When the script
// cannot decide (the limit's key is of another type, say) it stores nothing of the message; it
// is then checked by limiter::check, which applies the policy's failure mode as every other
// check does, and submitted again without the limit when allowed.
class ingest_batcher : public std::enable_shared_from_this<ingest_batcher> {
 public:
  // Runs exactly once, on the executor of the first message of its call (not necessarily its
  // own): it must be safe to run there, as responder::send is. `limit` is the decision of a
  // message submitted with a rate limit, when one was taken: refused (not allowed), the message
  // was not stored and `out` means nothing; degraded, Redis could not decide (see `decision`).
  using handler = std::function<void(ingest_outcome out, std::optional<ratelimit::decision> limit)>;
  struct limits {
    std::size_t max_in_flight = 3;
    std::size_t max_batch = 32;  // ~2 ms of Redis time: other clients wait that long at most
  };
  // The rate limit of a message: `applies` to `subject` (nullptr: none), costing 1.
  struct limit {
    const ratelimit::policy* applies = nullptr;  // must outlive the batcher
    std::string subject;
  };

  // With `memory`, a message is answered `full` at once while Redis is nearly full. `limiter`
  // (needed for messages submitted with a limit) counts the decisions and decides the ones the
  // script could not.
  ingest_batcher(broker::broker& redis, const contract::key_space& keys,
                 const inbound_options& options, limits lim, histogram& batch_sizes,
                 redis_memory* memory = nullptr, ratelimit::limiter* limiter = nullptr);

  // Thread-safe.
  void submit(inbound_message msg, boost::asio::any_io_executor ex, handler done);
  void submit(inbound_message msg, limit lim, boost::asio::any_io_executor ex, handler done);

 private:
  struct pending {
    std::vector<std::string> keys;  // the message's 10 keys, in the script's order
    std::vector<std::string> args;  // its 11 arguments (the script's 12th is its limit's index)
    std::size_t size = 0;           // of its envelope
    const ratelimit::policy* policy = nullptr;  // its rate limit, if any
    std::string subject;                        // of the limit
    boost::asio::any_io_executor ex;
    handler done;
  };
  using batch = std::vector<pending>;

  void enqueue(pending p);
  batch take_locked();
  void send_locked(batch b);  // under mu_: calls reach the broker in order
  void finish(batch& b, boost::system::error_code ec, const broker::reply& r);
  // The script could not decide p's limit: the limiter decides (or applies the failure mode).
  void check_apart(pending p);

  broker::broker& redis_;
  redis_memory* memory_;
  ratelimit::limiter* limiter_;
  const contract::key_space& keys_;
  const limits limits_;
  histogram& batch_sizes_;
  const broker::script script_;
  const std::string inbound_key_;
  const std::vector<std::string> common_args_;

  std::mutex mu_;
  std::deque<pending> waiting_;
  std::size_t in_flight_ = 0;
};

}  // namespace bellhop::gateway
