#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/conversation_change.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/contract/staff_reply.hpp"
#include "bellhop/realtime/hub.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::realtime {

// A staff member's `reply` frame and how it is queued: the contract's types
// (bellhop/contract/staff_reply.hpp), implemented by the outbound flow, wired by the app.
using contract::reply_callback;
using contract::reply_queuer;
using contract::reply_request;
using contract::reply_result;
// The frames takeover, release and read and how they are written: the contract's types
// (bellhop/contract/conversation_change.hpp), implemented by the dashboard module, wired by
// the app.
using contract::conversation_changer;

struct service_options {
  std::string jwt_secret;
  std::size_t max_connections = 10000;
  std::size_t send_queue_bytes = 1 << 20;
  std::size_t max_frame_bytes = 64 << 10;
  std::chrono::seconds heartbeat{30};
  std::chrono::seconds idle_timeout{75};
  std::chrono::milliseconds auth_timeout{10000};
  std::size_t max_subscriptions = 200;  // properties per session
  std::size_t max_text_bytes = 16384;   // of a reply
  hub_options hub;
};

struct service_stats {
  std::atomic<std::uint64_t> sessions{0};  // open, authenticated or not
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};  // bad or missing token or session, over max_connections
  std::atomic<std::uint64_t> console_accepted{0};  // upgrades signed in with the console's cookie
  // Cookie connections closed because their session ended (revoked, gone at a heartbeat's
  // re-check, or expired).
  std::atomic<std::uint64_t> console_sessions_ended{0};
  std::atomic<std::uint64_t> slow_closed{0};
  std::atomic<std::uint64_t> frames_in{0};
  std::atomic<std::uint64_t> errors_sent{0};
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> conversation_changes{0};  // takeover, release, read frames taken
};

// GET /v1/realtime: the staff dashboards' WebSocket endpoint (docs/realtime.md). Owns the hub
// and every session.
//
// A dashboard authenticates with a staff token (in the URL or an auth frame) or, from the
// console, with its session cookie: `sessions` (the console's lookup, server/staff_auth.hpp;
// empty: cookies are not accepted) is asked before the upgrade and again every heartbeat, and
// the console's revocation channel (key_space::console_revoked, through the broker's one
// subscriber connection) ends the connections of a session or user at once.
class service {
 public:
  service(boost::asio::io_context& ioc, broker::broker& redis, contract::key_space keys,
          service_options options, reply_queuer queue_reply,
          conversation_changer change_conversation = {}, gateway::session_lookup sessions = {});
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Takes over a connection whose request is a WebSocket upgrade for /v1/realtime: answers
  // 401/503 JSON without upgrading when the URL's token is bad or the limit is reached. Without
  // a URL token, a session cookie is looked up first (asynchronously): 401 when the session is
  // unknown or ended, 503 when Redis cannot be asked, 403 csrf_failed when an Origin header
  // names another site.
  // `hold` (may be empty) is kept until the connection closes (the HTTP server's slot).
  void accept(boost::beast::tcp_stream stream,
              boost::beast::http::request<boost::beast::http::string_body> req,
              std::shared_ptr<void> hold = {});
  // Closes every session with 1001 (going away). Thread-safe.
  void shutdown();

  const service_stats& stats() const noexcept;
  const hub_stats& hub_statistics() const noexcept;

  struct shared;

 private:
  std::shared_ptr<shared> shared_;
};

// Close codes besides the standard ones (docs/realtime.md).
inline constexpr std::uint16_t close_unauthorized = 4401;   // no/bad/expired token or session
inline constexpr std::uint16_t close_slow_consumer = 4008;  // send queue over its limit

}  // namespace bellhop::realtime
