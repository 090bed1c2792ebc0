#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"

namespace bellhop::realtime {

// A frame ready to send to dashboards: serialized once, shared by every session.
using frame = std::shared_ptr<const std::string>;

// What the hub delivers to: the WebSocket session, or a test double. The hub calls deliver() on
// its own strand, in seq order per property; an implementation hands the frame to its own
// strand and must not block.
class subscriber {
 public:
  virtual ~subscriber() = default;
  // Sequenced events, ephemeral events (typing, presence) and `subscribed` answers.
  virtual void deliver(frame f) = 0;
  // Unsent bytes; a replay from history waits while this is above hub_options::replay_pause_bytes.
  virtual std::size_t queued_bytes() const = 0;
  // Identifies the session in ephemeral events it published itself (not echoed back to it).
  virtual const std::string& session_id() const = 0;
};

struct hub_options {
  std::chrono::seconds history_max_age{86400};  // `since` older than this: recovered:false
  std::size_t replay_page = 250;                // events per XRANGE while replaying
  std::size_t replay_pause_bytes = 256 * 1024;
  std::chrono::milliseconds retry_delay{200};  // after a failed history read
  // Called (on the hub's strand) for each event from Redis that is skipped, never sent: a
  // history entry that is not one JSON object within bellhop::json's limits (1 MiB, 32 levels,
  // UTF-8), or an event (history or pub/sub) that is not one of this property under its seq
  // in the layout Bellhop writes (contract::parse_stored_event).
  // `reason`: "too_large", "too_deep", "invalid_utf8", "syntax", "not_object" or "invalid".
  std::function<void(std::string_view reason)> on_poison;
};

// Counters for /metrics (the gateway renders them).
struct hub_stats {
  std::atomic<std::uint64_t> properties{0};          // properties with local dashboards
  std::atomic<std::uint64_t> events{0};              // sequenced events received from Redis
  std::atomic<std::uint64_t> deliveries{0};          // frames handed to sessions
  std::atomic<std::uint64_t> gaps_filled{0};         // events fetched from history after a gap
  std::atomic<std::uint64_t> gaps_unrecoverable{0};  // seqs that were not in history either
  std::atomic<std::uint64_t> replayed{0};            // events replayed for `since`
  std::atomic<std::uint64_t> not_recovered{0};       // `subscribed` answers with recovered:false
  std::atomic<std::uint64_t> redis_errors{0};
};

// The process's fan-out of property events to local dashboards (docs/realtime.md).
//
// One Redis SUBSCRIBE per property that has local dashboards, through the broker's single
// subscriber connection; UNSUBSCRIBE when the last one leaves. Events carry a seq assigned in
// Redis (core/lua/fragments/event.lua); the hub reads each as data
// (contract::parse_stored_event) and serializes its frame once (contract::event_frame). Per
// property it delivers them strictly in seq order, each once: a seq that arrives ahead of the next
// expected one parks the later events and the missing ones are read from the property's stream
// (XRANGE) first. The same happens after the subscriber connection comes back (the broker's
// on_subscribed): GET the counter, read what was missed. A seq that history no longer has is
// skipped and counted.
//
// A dashboard that subscribes with `since` gets the events after it from history, then the live
// ones, by seq: live events that arrive during the history read wait in its member entry and
// only the next expected seq is ever delivered (the seam of docs/realtime.md). If history does not
// reach back to since+1 (trimmed, older than history_max_age, or the counter went back after
// a data loss), the answer is recovered:false and the dashboard continues live.
//
// Ephemeral events (typing, presence) are PUBLISHed as "~<origin session id>\n<frame>" on the
// same channel: delivered to every member except the origin, never stored, no seq.
//
// Everything runs on one strand of the given executor.
class hub {
 public:
  hub(boost::asio::any_io_executor ex, broker::broker& redis, contract::key_space keys,
      hub_options options);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // Thread-safe. The subscriber receives {"type":"subscribed",...} and then the events; a
  // second subscribe to the same property replaces the first (new since).
  void subscribe(std::shared_ptr<subscriber> s, std::string property,
                 std::optional<std::uint64_t> since);
  void unsubscribe(const subscriber* s, std::string property);
  void unsubscribe_all(const subscriber* s);
  // PUBLISHes an ephemeral event frame (typing) to every process's dashboards of `property`.
  void publish_ephemeral(std::string property, const std::string& origin_session,
                         std::string frame_json);
  // Drops every subscription (shutdown). Thread-safe.
  void stop();

  const hub_stats& stats() const noexcept;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace bellhop::realtime
