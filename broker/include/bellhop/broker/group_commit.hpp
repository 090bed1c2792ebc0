#pragma once
// The step the group commits share (the ingest batcher, the rate limiter): items wait while a
// few calls are in flight and leave together in the next one (docs/architecture.md, "Ingest").

#include <cstddef>
#include <mutex>
#include <utility>

namespace bellhop::broker {

// One call of a group commit is back, with or without an answer. Under `mu`: it no longer
// counts in `in_flight`. Without any answer (`outage`: timeout, connection lost, Redis down),
// the items `waiting` would each wait their turn for the same fate, so they join the call's
// `batch` and are answered with it now. Otherwise, when items wait, `send_next()` (called under
// `mu`) starts the next call before this one's answers go out, so Redis stays busy.
template <class Waiting, class Batch, class SendNext>
void group_commit_returned(std::mutex& mu, std::size_t& in_flight, Waiting& waiting, Batch& batch,
                           bool outage, SendNext&& send_next) {
  std::lock_guard lock(mu);
  --in_flight;
  if (outage) {
    for (auto& item : waiting) batch.push_back(std::move(item));
    waiting.clear();
  } else if (!waiting.empty()) {
    send_next();
  }
}

}  // namespace bellhop::broker
