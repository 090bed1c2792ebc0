#include "bellhop/realtime/service.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>

#include "bellhop/contract/event.hpp"
#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "bellhop/contract/timestamp.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/coalescing_stream.hpp"
#include "bellhop/server/json_response.hpp"
#include "bellhop/server/upgrade_refusal.hpp"
#include "client_frame.hpp"
#include "revocation.hpp"

namespace bellhop::realtime {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;
using sys_clock = std::chrono::system_clock;
using contract::is_conversation_id;
using contract::is_property_id;
using json::writer;

using json::put;

std::string text_of(const rapidjson::StringBuffer& b) {
  return {b.GetString(), b.GetSize()};
}

// Printable ASCII without quotes or backslashes: ids clients choose (client_msg_id).
bool is_client_id(std::string_view s) {
  return !s.empty() && s.size() <= contract::id_limits::client_msg_id &&
         std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f && c != '"' && c != '\\'; });
}

// A value the client sent, as an error frame's `ref`: only when short and plain (error frames
// never carry large input back); "" otherwise.
std::string_view echo(std::string_view s) {
  return s.size() <= 64 && is_client_id(s) ? s : std::string_view{};
}

class ws_session;

// A connection signed in with the console's session cookie. The cookie value stays in memory
// only, for the heartbeat's re-check; it is never logged or written anywhere.
struct console_login {
  std::string cookie;
  std::string user;        // the principal's subject
  std::string session_id;  // the console session's id (what a {"session":…} revocation names)
};

std::string host_and_pid() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

struct service::shared {
  shared(asio::io_context& io, broker::broker& r, contract::key_space k, service_options o,
         reply_queuer q, conversation_changer c, gateway::session_lookup l)
      : ioc(io),
        redis(r),
        keys(std::move(k)),
        opts(std::move(o)),
        queue_reply(std::move(q)),
        change_conversation(std::move(c)),
        lookup(std::move(l)),
        events(io.get_executor(), r, keys, opts.hub) {}

  asio::io_context& ioc;
  broker::broker& redis;
  const contract::key_space keys;
  const service_options opts;
  const reply_queuer queue_reply;
  const conversation_changer change_conversation;
  const gateway::session_lookup lookup;  // empty: session cookies are not accepted
  hub events;
  service_stats stats;
  const std::string process_name = host_and_pid();

  std::mutex mutex;
  std::unordered_map<std::string, std::weak_ptr<ws_session>> sessions;
  bool stopping = false;

  // The console's revocation channel (only when sessions are accepted): its messages and
  // re-subscriptions run on this strand.
  asio::strand<asio::io_context::executor_type> revocations{ioc.get_executor()};
  broker::broker::subscription_id revoked_subscription = 0;
  bool revoked_subscribed_once = false;  // revocations strand only
};

namespace {

constexpr std::size_t kernel_send_buffer = 64 * 1024;
// Redis commands a session may have waiting for their answers (presence, session records);
// beyond, it stops reading the client's frames until some are answered.
constexpr int max_redis_in_flight = 64;

class ws_session : public subscriber, public std::enable_shared_from_this<ws_session> {
 public:
  ws_session(beast::tcp_stream&& stream, std::shared_ptr<service::shared> sh, std::string id,
             std::optional<contract::staff_claims> claims, std::optional<console_login> login,
             std::shared_ptr<void> hold)
      : login_(std::move(login)),
        hold_(std::move(hold)),
        ws_(std::move(stream)),
        strand_(ws_.get_executor()),
        shared_(std::move(sh)),
        id_(std::move(id)),
        claims_(std::move(claims)),
        auth_timer_(strand_),
        expiry_timer_(strand_),
        close_timer_(strand_),
        heartbeat_timer_(strand_) {}

  ~ws_session() override {
    --shared_->stats.sessions;
    std::lock_guard lock(shared_->mutex);
    shared_->sessions.erase(id_);
  }

  void start(http::request<http::string_body> req) {
    const auto& o = shared_->opts;
    beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts take over
    // A fixed kernel send buffer: without it Linux grows it up to megabytes for a dashboard
    // that does not read, on top of send_queue_bytes, and the limit would mean little.
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(
        asio::socket_base::send_buffer_size(static_cast<int>(kernel_send_buffer)), ignored);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = o.idle_timeout;
    t.keep_alive_pings = true;  // a ping after idle_timeout/2 of silence
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "bellhop"); }));
    ws_.read_message_max(o.max_frame_bytes);
    ws_.async_accept(req, [self = shared_from_this()](error_code ec) { self->on_accept(ec); });
  }

  // ---- subscriber (called on the hub's strand) ----------------------------------------

  void deliver(frame f) override {
    if (slow_.load(std::memory_order_relaxed)) return;
    const auto size = f->size();
    if (inbox_bytes_.fetch_add(size, std::memory_order_relaxed) + size + layer().unsent() >
        shared_->opts.send_queue_bytes) {
      inbox_bytes_.fetch_sub(size, std::memory_order_relaxed);
      if (!slow_.exchange(true))
        asio::post(strand_, [self = shared_from_this()] { self->close_slow(); });
      return;
    }
    // Frames arriving while a hand-over is pending ride along with it: one post per burst, not
    // one per frame.
    {
      std::lock_guard lock(inbox_mutex_);
      inbox_.push_back(std::move(f));
      if (inbox_posted_) return;
      inbox_posted_ = true;
    }
    asio::post(strand_, [self = shared_from_this()] { self->take_inbox(); });
  }
  // Delivered but not yet written to the socket: waiting for the strand, or in the coalescing
  // layer's buffers.
  std::size_t queued_bytes() const override {
    return inbox_bytes_.load(std::memory_order_relaxed) + layer().unsent();
  }
  const std::string& session_id() const override { return id_; }

  // Shutdown: 1001 going away.
  void go_away() {
    asio::post(strand_, [self = shared_from_this()] {
      self->close(websocket::close_code::going_away, "server shutting down");
    });
  }

  // Whether a revocation names this connection's console session. Any thread: login_ is const.
  bool revoked_by(const revocation& r) const {
    return login_ && ((!r.user.empty() && r.user == login_->user) ||
                      (!r.session_id.empty() && r.session_id == login_->session_id));
  }
  bool console_signed_in() const { return login_.has_value(); }
  // Any thread.
  void revoked() {
    asio::post(strand_, [self = shared_from_this()] { self->end_console_session(); });
  }
  // Any thread: asks the lookup whether the session still exists (after a missed message).
  void recheck() {
    asio::post(strand_, [self = shared_from_this()] { self->recheck_session(); });
  }

 private:
  void on_accept(error_code ec) {
    if (ec) {
      spdlog::debug("realtime: handshake failed: {}", ec.message());
      return;
    }
    ++shared_->stats.accepted;
    accepted_ = true;
    if (end_after_accept_) return end_console_session();  // revoked during the handshake
    if (claims_) {
      authenticated();
    } else {
      auth_timer_.expires_after(shared_->opts.auth_timeout);
      auth_timer_.async_wait([self = shared_from_this()](error_code e) {
        if (e || self->claims_) return;
        ++self->shared_->stats.refused;
        self->send_error("unauthorized", "no auth frame within the auth timeout", "auth");
        self->close(close_unauthorized, "unauthorized");
      });
    }
    read();
  }

  void authenticated() {
    auth_timer_.cancel();
    rapidjson::StringBuffer b;
    writer w(b);
    w.StartObject();
    put(w, "type", "welcome");
    put(w, "session_id", id_);
    w.Key("heartbeat_s");
    w.Int64(shared_->opts.heartbeat.count());
    put(w, "sub", claims_->subject);
    put(w, "expires_at", contract::format_rfc3339(claims_->expires));
    w.EndObject();
    send(text_of(b));
    if (!registered_) {
      registered_ = true;
      register_session();
    }
    arm_expiry();
  }

  // The token's exp, or the console session's end: then 4401.
  void arm_expiry() {
    expiry_timer_.expires_after(std::max(
        std::chrono::steady_clock::duration::zero(),
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(claims_->expires -
                                                                        sys_clock::now())));
    expiry_timer_.async_wait([self = shared_from_this()](error_code e) {
      if (e) return;
      if (self->login_) return self->end_console_session();
      self->send_error("token_expired", "the token expired; reconnect with a new one", "auth");
      self->close(close_unauthorized, "token expired");
    });
  }

  // ---- console sessions ----------------------------------------------------------------
  // A cookie connection lives as long as its session: a revocation (sign-out, account
  // disabled), the session's end, or a heartbeat's re-check that no longer finds it closes it.

  void end_console_session() {
    if (closing_) return;
    if (!accepted_) {  // nothing may be written before the handshake's answer
      end_after_accept_ = true;
      return;
    }
    ++shared_->stats.console_sessions_ended;
    send_error("session_ended", "the console session has ended: sign in again", "");
    close(close_unauthorized, "session ended");
  }

  // The backstop for a revocation message missed while the subscriber connection was away.
  // Redis being unreachable ends nothing: the next heartbeat asks again.
  void recheck_session() {
    if (!login_ || !shared_->lookup || closing_ || recheck_pending_) return;
    recheck_pending_ = true;
    shared_->lookup(
        login_->cookie, [self = shared_from_this()](gateway::session_status status,
                                                    std::optional<gateway::staff_principal> p) {
          asio::post(self->strand_, [self, status, p = std::move(p)] {
            self->recheck_pending_ = false;
            if (self->closing_ || status == gateway::session_status::unavailable) return;
            if (status != gateway::session_status::ok || !p ||
                p->session_id != self->login_->session_id || p->subject != self->login_->user)
              return self->end_console_session();
            if (p->expires != self->claims_->expires) {  // the session was extended (or shortened)
              self->claims_->expires = p->expires;
              self->arm_expiry();
            }
          });
        });
  }

  // ---- session record and presence ------------------------------------------------------
  // session:<id> (hash, TTL three heartbeats) says who is connected where; each property's
  // presence zset holds the session ids watching it, scored by when they expire unless
  // refreshed. Both are refreshed every heartbeat; a crashed process's entries just expire.

  std::chrono::seconds presence_ttl() const { return 3 * shared_->opts.heartbeat; }
  std::string presence_expiry() const {
    const auto at = sys_clock::now() + presence_ttl();
    return std::to_string(
        std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()).count());
  }

  void redis_post(broker::command cmd) {
    ++redis_in_flight_;
    shared_->redis.post(std::move(cmd), strand_,
                        [self = shared_from_this()](error_code, broker::reply) {
                          --self->redis_in_flight_;
                          if (self->read_paused_ && !self->closing_ &&
                              self->redis_in_flight_ < max_redis_in_flight) {
                            self->read_paused_ = false;
                            self->read();
                          }
                        });
  }

  void register_session() {
    redis_post({"HSET", shared_->keys.session(id_), "session_id", id_, "sub", claims_->subject,
                "connected_at", contract::format_rfc3339(sys_clock::now()), "process",
                shared_->process_name});
    redis_post({"EXPIRE", shared_->keys.session(id_), std::to_string(presence_ttl().count())});
    heartbeat_timer_.expires_after(shared_->opts.heartbeat);
    heartbeat_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->heartbeat();
    });
  }

  void heartbeat() {
    if (closing_) return;
    recheck_session();
    redis_post({"EXPIRE", shared_->keys.session(id_), std::to_string(presence_ttl().count())});
    const auto expiry = presence_expiry();
    for (const auto& p : properties_)
      redis_post({"ZADD", shared_->keys.property_presence(p), expiry, id_});
    heartbeat_timer_.expires_after(shared_->opts.heartbeat);
    heartbeat_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->heartbeat();
    });
  }

  void presence(const std::string& property, bool joined) {
    if (joined)
      redis_post({"ZADD", shared_->keys.property_presence(property), presence_expiry(), id_});
    else
      redis_post({"ZREM", shared_->keys.property_presence(property), id_});
    publish_ephemeral(
        property, "presence",
        {{"sub", claims_->subject}, {"session_id", id_}, {"status", joined ? "joined" : "left"}});
  }

  // An ephemeral event (no seq, not stored) to the property's other dashboards, everywhere.
  void publish_ephemeral(const std::string& property, std::string_view event,
                         std::initializer_list<std::pair<const char*, std::string_view>> data) {
    rapidjson::StringBuffer b;
    writer w(b);
    w.StartObject();
    for (const auto& [key, value] : data) put(w, key, value);
    w.EndObject();
    const auto ts = contract::format_rfc3339(sys_clock::now());
    shared_->events.publish_ephemeral(
        property, id_,
        contract::event_frame({property, event, {b.GetString(), b.GetSize()}, ts}, std::nullopt));
  }

  // ---- reading ------------------------------------------------------------------------

  void read() {
    ws_.async_read(buffer_,
                   [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(error_code ec) {
    if (ec) {
      if (ec != websocket::error::closed && ec != asio::error::operation_aborted)
        spdlog::debug("realtime: session {} read ended: {}", id_, ec.message());
      ended();
      return;
    }
    ++shared_->stats.frames_in;
    if (!ws_.got_text()) {
      buffer_.consume(buffer_.size());
      send_error("bad_request", "frames must be JSON text", "");
      close(websocket::close_code::unknown_data, "binary frames are not supported");
      return;
    }
    const auto data = buffer_.cdata();
    handle(std::string_view(static_cast<const char*>(data.data()), data.size()));
    buffer_.consume(buffer_.size());
    if (buffer_.capacity() > 8 * 1024) buffer_.shrink_to_fit();  // after an unusually big frame
    if (closing_) return;
    if (redis_in_flight_ >= max_redis_in_flight) {
      read_paused_ = true;  // redis_post's completions resume
      return;
    }
    read();
  }

  void handle(std::string_view text) {
    auto parsed = parse_client_frame(text, shared_->opts.max_frame_bytes);
    if (!parsed) {
      send_error("bad_request", parsed.error(), "");
      return;
    }
    const client_frame& frame = *parsed;
    const std::string_view type = frame.type;
    if (!claims_) {
      if (type != "auth") {
        ++shared_->stats.refused;
        send_error("unauthorized", "the first frame must be {\"type\":\"auth\",\"token\":...}",
                   echo(type));
        close(close_unauthorized, "unauthorized");
        return;
      }
      auto claims = contract::verify_staff_token(frame.token, shared_->opts.jwt_secret, sys_clock::now());
      if (!claims) {
        ++shared_->stats.refused;
        send_error("unauthorized", std::string(contract::describe(claims.error())), "auth");
        close(close_unauthorized, "unauthorized");
        return;
      }
      claims_ = std::move(*claims);
      authenticated();
      return;
    }
    if (type == "subscribe") return on_subscribe(frame);
    if (type == "unsubscribe") return on_unsubscribe(frame);
    if (type == "reply") return on_reply(frame);
    if (type == "typing") return on_typing(frame);
    if (type == "ping") return send(R"({"type":"pong"})");
    if (type == "auth") return on_refresh(frame);
    if (type == "takeover") return on_conversation_change(frame, "handoff");
    if (type == "release") return on_conversation_change(frame, "release");
    if (type == "read") return on_conversation_change(frame, "read");
    send_error("unknown_type",
               "type must be one of subscribe, unsubscribe, reply, typing, ping, auth, takeover, "
               "release, read",
               echo(type));
  }

  // A token close to expiry is replaced in-band by a newer one for the same staff member.
  void on_refresh(const client_frame& frame) {
    // The console's session decides who this connection is, for as long as it lasts.
    if (login_)
      return send_error("unauthorized",
                        "this connection is signed in with a console session; an auth frame "
                        "cannot change it",
                        "auth");
    auto claims = contract::verify_staff_token(frame.token, shared_->opts.jwt_secret, sys_clock::now());
    if (!claims) return send_error("unauthorized", std::string(contract::describe(claims.error())), "auth");
    if (claims->subject != claims_->subject)
      return send_error("unauthorized", "a refreshed token must be for the same sub", "auth");
    // Subscriptions the new token no longer covers end now, each with an error frame after
    // the new welcome, so the dashboard can stop showing the property.
    std::vector<std::string> ended;
    for (auto it = properties_.begin(); it != properties_.end();) {
      if (claims->allows(*it)) {
        ++it;
        continue;
      }
      shared_->events.unsubscribe(this, *it);
      presence(*it, false);
      ended.push_back(*it);
      it = properties_.erase(it);
    }
    claims_ = std::move(*claims);
    expiry_timer_.cancel();
    authenticated();
    for (const auto& property : ended)
      send_error(
          "subscription_ended",
          "the refreshed token does not cover property '" + property + "': its subscription ended",
          "auth", property);
  }

  bool property_allowed(const client_frame& frame, std::string_view ref, std::string& out) {
    const std::string_view property = frame.property_id;
    if (!is_property_id(property)) {
      send_error("invalid_field", "property_id must be 1-64 letters, digits, '-', '_' or '.'", ref);
      return false;
    }
    if (!claims_->allows(property)) {
      send_error("forbidden",
                 std::string(login_ ? "the account" : "the token") + " does not cover property '" +
                     std::string(property) + "'",
                 ref);
      return false;
    }
    out = property;
    return true;
  }

  void on_subscribe(const client_frame& frame) {
    std::string property;
    if (!property_allowed(frame, "subscribe", property)) return;
    if (frame.since_invalid)
      return send_error("invalid_field", "since must be a non-negative integer (a seq)",
                        "subscribe");
    const std::optional<std::uint64_t> since = frame.since;
    if (!properties_.contains(property) && properties_.size() >= shared_->opts.max_subscriptions)
      return send_error(
          "too_many_subscriptions",
          "at most " + std::to_string(shared_->opts.max_subscriptions) + " properties per session",
          "subscribe");
    if (properties_.insert(property).second) presence(property, true);
    shared_->events.subscribe(shared_from_this(), property, since);
  }

  void on_unsubscribe(const client_frame& frame) {
    const std::string& property = frame.property_id;
    if (properties_.erase(property) == 0)
      return send_error("not_subscribed", "not subscribed to that property", "unsubscribe");
    shared_->events.unsubscribe(this, property);
    presence(property, false);
  }

  void on_reply(const client_frame& frame) {
    const std::string_view client_msg_id = frame.client_msg_id;
    if (!is_client_id(client_msg_id))
      return send_error("invalid_field", "client_msg_id must be 1-128 printable ASCII characters",
                        "reply");
    const std::string ref(client_msg_id);
    std::string property;
    if (!property_allowed(frame, ref, property)) return;
    const std::string_view conversation = frame.conversation_id;
    if (!is_conversation_id(conversation))
      return send_error("invalid_field", "conversation_id must be a conversation id (c_…)", ref);
    const std::string_view text = frame.text;
    if (text.empty()) return send_error("invalid_field", "text must be a non-empty string", ref);
    if (text.size() > shared_->opts.max_text_bytes)
      return send_error(
          "too_long",
          "text is longer than " + std::to_string(shared_->opts.max_text_bytes) + " bytes", ref);
    if (replies_in_flight_ >= 16)
      return send_error("busy", "too many replies in flight; wait for their acks", ref);
    ++replies_in_flight_;
    ++shared_->stats.replies;
    shared_->queue_reply(reply_request{claims_->subject, id_, property, std::string(conversation),
                                       std::string(text), ref},
                         [self = shared_from_this(), ref](reply_result r) {
                           asio::post(self->strand_, [self, ref, r = std::move(r)] {
                             --self->replies_in_flight_;
                             if (!r.error_code.empty())
                               return self->send_error(r.error_code, r.error_message, ref, {},
                                                       r.retry_after_ms);
                             rapidjson::StringBuffer b;
                             writer w(b);
                             w.StartObject();
                             put(w, "type", "ack");
                             put(w, "client_msg_id", ref);
                             put(w, "id", r.id);
                             w.EndObject();
                             self->send(text_of(b));
                           });
                         });
  }

  // takeover (change "handoff": to this staff member), release and read: answered with an
  // ack carrying the event's seq and the conversation's state, or an error frame; the
  // conversation.updated event reaches every subscribed dashboard through the hub.
  void on_conversation_change(const client_frame& frame, std::string_view change) {
    const std::string_view type = frame.type;
    const std::string ref(frame.client_msg_id.empty() ? type
                                                      : std::string_view(frame.client_msg_id));
    if (!frame.client_msg_id.empty() && !is_client_id(frame.client_msg_id))
      return send_error("invalid_field", "client_msg_id must be 1-128 printable ASCII characters",
                        type);
    std::string property;
    if (!property_allowed(frame, ref, property)) return;
    const std::string_view conversation = frame.conversation_id;
    if (!is_conversation_id(conversation))
      return send_error("invalid_field", "conversation_id must be a conversation id (c_…)", ref);
    if (!shared_->change_conversation)
      return send_error("unavailable", "conversation changes are not served here", ref);
    if (changes_in_flight_ >= 16)
      return send_error("busy", "too many changes in flight; wait for their acks", ref);
    ++changes_in_flight_;
    ++shared_->stats.conversation_changes;
    contract::conversation_change c;
    c.property_id = property;
    c.conversation_id = conversation;
    c.change = change;
    c.by = claims_->subject;
    if (change == "handoff") {
      c.assignee = claims_->subject;
      c.reason = "taken over by staff";
    }
    shared_->change_conversation(
        std::move(c), [self = shared_from_this(), ref, type = std::string(type),
                       echo_id = frame.client_msg_id](contract::conversation_change_result r) {
          asio::post(self->strand_, [self, ref, type, echo_id, r = std::move(r)] {
            --self->changes_in_flight_;
            if (!r.error_code.empty()) return self->send_error(r.error_code, r.error_message, ref);
            rapidjson::StringBuffer b;
            writer w(b);
            w.StartObject();
            put(w, "type", "ack");
            put(w, "for", type);
            if (!echo_id.empty()) put(w, "client_msg_id", echo_id);
            w.Key("seq");
            w.Uint64(r.seq);
            w.Key("conversation");
            w.RawValue(r.state_json.data(), r.state_json.size(), rapidjson::kObjectType);
            w.EndObject();
            self->send(text_of(b));
          });
        });
  }

  void on_typing(const client_frame& frame) {
    std::string property;
    if (!property_allowed(frame, "typing", property)) return;
    const std::string_view conversation = frame.conversation_id;
    if (!is_conversation_id(conversation))
      return send_error("invalid_field", "conversation_id must be a conversation id (c_…)",
                        "typing");
    const auto now = std::chrono::steady_clock::now();
    if (now - last_typing_ < std::chrono::milliseconds(500)) return;  // one every 0.5 s is plenty
    last_typing_ = now;
    publish_ephemeral(
        property, "typing",
        {{"conversation_id", conversation}, {"sub", claims_->subject}, {"session_id", id_}});
  }

  // ---- writing ------------------------------------------------------------------------
  // Every text frame goes straight into the coalescing layer under Beast (framed there), in
  // call order: no Beast write operation per event. Beast itself only writes the handshake and
  // control frames (pongs, keep-alive pings, the close frame), each appended whole, so nothing
  // interleaves.

  server::coalescing_stream& layer() { return ws_.next_layer(); }
  const server::coalescing_stream& layer() const { return ws_.next_layer(); }

  // Every frame, answers to the client's own frames included, counts against send_queue_bytes:
  // a client that sends pings and never reads the pongs is closed like any slow one.
  void send(std::string_view text) {
    if (closing_) return;
    if (queued_bytes() + text.size() > shared_->opts.send_queue_bytes) {
      if (!slow_.exchange(true)) close_slow();
      return;
    }
    layer().write_text(text);
  }

  // `property` (optional) names the property an error is about when `ref` does not say it.
  void send_error(std::string_view code, std::string_view message, std::string_view ref,
                  std::string_view property = {}, std::int64_t retry_after_ms = 0) {
    ++shared_->stats.errors_sent;
    rapidjson::StringBuffer b;
    writer w(b);
    w.StartObject();
    put(w, "type", "error");
    put(w, "code", code);
    put(w, "message", message);
    if (!ref.empty()) put(w, "ref", ref);
    if (!property.empty()) put(w, "property_id", property);
    if (retry_after_ms > 0) {
      w.Key("retry_after_ms");
      w.Int64(retry_after_ms);
    }
    w.EndObject();
    send(text_of(b));
  }

  void take_inbox() {
    {
      std::lock_guard lock(inbox_mutex_);
      inbox_.swap(taken_);
      inbox_posted_ = false;
    }
    for (auto& f : taken_) {
      send(*f);
      inbox_bytes_.fetch_sub(f->size(), std::memory_order_relaxed);
    }
    taken_.clear();
  }

  // ---- closing ------------------------------------------------------------------------

  void close_slow() {
    ++shared_->stats.slow_closed;
    spdlog::warn("realtime: session {} ({}) is not reading; closing it ({} bytes unsent)", id_,
                 claims_ ? claims_->subject : "unauthenticated", queued_bytes());
    // Whatever is not on its way yet will not be read in time: drop it, then close.
    layer().discard_pending();
    close(close_slow_consumer, "too slow: send queue over its limit");
  }

  // The close frame goes out behind what is buffered; a peer that does not take it within 5 s
  // (a stuck write, no close answer) loses the socket.
  void close(std::uint16_t code, std::string_view why) {
    if (closing_) return;
    closing_ = true;
    ended();
    close_timer_.expires_after(std::chrono::seconds(5));
    close_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec) return;
      error_code ignored;
      beast::get_lowest_layer(self->ws_).socket().close(ignored);
    });
    websocket::close_reason reason;
    reason.code = code;
    reason.reason = std::string(why);
    ws_.async_close(reason,
                    [self = shared_from_this()](error_code) { self->close_timer_.cancel(); });
  }

  // Leaves the hub once; the session object dies when the last pending operation ends.
  void ended() {
    if (left_) return;
    left_ = true;
    closing_ = true;
    auth_timer_.cancel();
    expiry_timer_.cancel();
    heartbeat_timer_.cancel();
    shared_->events.unsubscribe_all(this);
    if (!registered_) return;
    for (const auto& p : properties_) presence(p, false);
    redis_post({"DEL", shared_->keys.session(id_)});
  }

  const std::optional<console_login> login_;  // set: signed in with the console's cookie
  bool recheck_pending_ = false;
  bool accepted_ = false;          // the WebSocket handshake completed
  bool end_after_accept_ = false;  // the session ended while the handshake was under way
  std::shared_ptr<void> hold_;  // the connection's slot under the HTTP server's limits
  websocket::stream<server::coalescing_stream> ws_;
  asio::any_io_executor strand_;
  std::shared_ptr<service::shared> shared_;
  const std::string id_;
  std::optional<contract::staff_claims> claims_;
  asio::steady_timer auth_timer_, expiry_timer_, close_timer_, heartbeat_timer_;
  bool registered_ = false;
  beast::flat_buffer buffer_;
  std::atomic<std::size_t> inbox_bytes_{0};
  std::atomic<bool> slow_{false};
  std::mutex inbox_mutex_;
  std::vector<frame> inbox_;  // delivered by the hub, not yet on the strand
  bool inbox_posted_ = false;
  std::vector<frame> taken_;  // strand only
  bool closing_ = false;
  bool left_ = false;
  std::set<std::string> properties_;
  int replies_in_flight_ = 0;
  int changes_in_flight_ = 0;
  int redis_in_flight_ = 0;
  bool read_paused_ = false;
  std::chrono::steady_clock::time_point last_typing_{};
};

// Answers an upgrade request with an HTTP error and closes the connection.
void refuse(beast::tcp_stream stream, const http::request<http::string_body>& req,
            http::status status, std::string_view code, std::string_view message) {
  const auto shell = gateway::request_shell(req);
  auto res = status == http::status::service_unavailable
                 ? gateway::service_unavailable(shell, code, message, std::chrono::seconds(5))
                 : gateway::json_error(shell, status, code, message);
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer");
  gateway::refuse_upgrade(std::move(stream), std::move(res));
}

// Opens a session for an upgrade that passed authentication (or will send an auth frame).
void open_session(const std::shared_ptr<service::shared>& sh, beast::tcp_stream stream,
                  http::request<http::string_body> req, std::shared_ptr<void> hold,
                  std::optional<contract::staff_claims> claims,
                  std::optional<console_login> login) {
  std::shared_ptr<ws_session> session;
  {
    std::lock_guard lock(sh->mutex);
    if (sh->stopping) {
      ++sh->stats.refused;
      return refuse(std::move(stream), req, http::status::service_unavailable, "unavailable",
                    "Bellhop is shutting down");
    }
    if (sh->sessions.size() >= sh->opts.max_connections) {
      ++sh->stats.refused;
      return refuse(std::move(stream), req, http::status::service_unavailable,
                    "too_many_connections",
                    "the dashboard connection limit (realtime.max_connections) is reached");
    }
    std::string id = "s_" + contract::make_random_hex(12);
    if (login) ++sh->stats.console_accepted;
    session = std::make_shared<ws_session>(std::move(stream), sh, id, std::move(claims),
                                           std::move(login), std::move(hold));
    sh->sessions.emplace(id, session);
    ++sh->stats.sessions;
  }
  session->start(std::move(req));
}

// An upgrade with the console's session cookie and no token: the session is looked up before
// the upgrade; the connection waits (holding its slot) on no thread meanwhile.
void accept_console_session(const std::shared_ptr<service::shared>& sh, beast::tcp_stream stream,
                            http::request<http::string_body> req, std::shared_ptr<void> hold,
                            std::string cookie) {
  // A page of another site must not open a connection with the staff member's cookie
  // (cross-site WebSocket hijacking: browsers send cookies with cross-site upgrades).
  if (!gateway::same_origin(req)) {
    ++sh->stats.refused;
    return refuse(std::move(stream), req, http::status::forbidden, "csrf_failed",
                  "the Origin header names another site");
  }
  struct pending {
    beast::tcp_stream stream;
    http::request<http::string_body> req;
    std::shared_ptr<void> hold;
  };
  auto p = std::make_shared<pending>(pending{std::move(stream), std::move(req), std::move(hold)});
  const auto ex = p->stream.get_executor();
  auto lookup_done = [sh, p, ex, cookie](gateway::session_status status,
                                         std::optional<gateway::staff_principal> principal) {
    asio::post(ex, [sh, p, cookie, status, principal = std::move(principal)]() mutable {
      if (status == gateway::session_status::unavailable) {
        ++sh->stats.refused;
        return refuse(std::move(p->stream), p->req, http::status::service_unavailable,
                      "unavailable", "Redis is unavailable; retry later");
      }
      if (status != gateway::session_status::ok || !principal ||
          principal->expires <= sys_clock::now()) {
        ++sh->stats.refused;
        return refuse(std::move(p->stream), p->req, http::status::unauthorized, "unauthorized",
                      "the session has ended: sign in again");
      }
      contract::staff_claims claims{principal->subject, std::move(principal->properties),
                                    principal->expires};
      console_login login{std::move(cookie), std::move(principal->subject),
                          std::move(principal->session_id)};
      open_session(sh, std::move(p->stream), std::move(p->req), std::move(p->hold),
                   std::move(claims), std::move(login));
    });
  };
  sh->lookup(std::move(cookie), std::move(lookup_done));
}

// A message on the console's revocation channel: the named sessions end now.
void on_revoked(service::shared& sh, const std::string& payload) {
  const auto r = parse_revocation(payload);
  if (!r) {
    spdlog::debug("realtime: ignoring a malformed message on the console's revocation channel");
    return;
  }
  std::vector<std::shared_ptr<ws_session>> ended;
  {
    std::lock_guard lock(sh.mutex);
    for (auto& [id, weak] : sh.sessions)
      if (auto s = weak.lock(); s && s->revoked_by(*r)) ended.push_back(std::move(s));
  }
  for (auto& s : ended) s->revoked();
}

// Every cookie connection asks the lookup now, once the command connection answers (it
// reconnects on its own backoff, maybe after the subscriber): `attempts` PINGs 250 ms apart; if
// Redis stays away, the heartbeats ask later.
void recheck_console_sessions(const std::weak_ptr<service::shared>& weak, int attempts) {
  auto sh = weak.lock();
  if (!sh) return;
  sh->redis.post({"PING"}, sh->revocations, [weak, attempts](error_code ec, broker::reply r) {
    auto sh = weak.lock();
    if (!sh) return;
    if (ec || r.is_error()) {
      if (attempts <= 1) return;
      auto timer =
          std::make_shared<asio::steady_timer>(sh->revocations, std::chrono::milliseconds(250));
      timer->async_wait([timer, weak, attempts](error_code e) {
        if (!e) recheck_console_sessions(weak, attempts - 1);
      });
      return;
    }
    std::vector<std::shared_ptr<ws_session>> cookie_sessions;
    {
      std::lock_guard lock(sh->mutex);
      if (sh->stopping) return;
      for (auto& [id, session] : sh->sessions)
        if (auto s = session.lock(); s && s->console_signed_in())
          cookie_sessions.push_back(std::move(s));
    }
    for (auto& s : cookie_sessions) s->recheck();
  });
}

// After the subscriber connection came back, revocations may have been missed while it was
// away: the cookie connections are checked now rather than at their next heartbeat.
void on_revocations_resubscribed(const std::weak_ptr<service::shared>& weak) {
  auto sh = weak.lock();
  if (!sh) return;
  if (!sh->revoked_subscribed_once) {
    sh->revoked_subscribed_once = true;
    return;
  }
  recheck_console_sessions(weak, 40);
}

}  // namespace

service::service(asio::io_context& ioc, broker::broker& redis, contract::key_space keys,
                 service_options options, reply_queuer queue_reply,
                 conversation_changer change_conversation, gateway::session_lookup sessions)
    : shared_(std::make_shared<shared>(ioc, redis, std::move(keys), std::move(options),
                                       std::move(queue_reply), std::move(change_conversation),
                                       std::move(sessions))) {
  if (!shared_->lookup) return;
  std::weak_ptr<shared> weak = shared_;
  shared_->revoked_subscription = redis.subscribe(
      shared_->keys.console_revoked(), shared_->revocations,
      [weak](const std::string&, std::shared_ptr<const std::string> payload) {
        if (auto sh = weak.lock()) on_revoked(*sh, *payload);
      },
      [weak](const std::string&) { on_revocations_resubscribed(weak); });
}

service::~service() {
  shutdown();
}

void service::accept(beast::tcp_stream stream, http::request<http::string_body> req,
                     std::shared_ptr<void> hold) {
  const auto& o = shared_->opts;
  std::optional<contract::staff_claims> claims;
  bool token_given = false;
  {
    const auto url = boost::urls::parse_origin_form(req.target());
    if (url) {
      const auto params = url->params();
      if (auto it = params.find("token"); it != params.end() && (*it).has_value) {
        token_given = true;
        auto verified = contract::verify_staff_token((*it).value, o.jwt_secret, sys_clock::now());
        if (!verified) {
          ++shared_->stats.refused;
          return refuse(std::move(stream), req, http::status::unauthorized, "unauthorized",
                        contract::describe(verified.error()));
        }
        claims = std::move(*verified);
      }
    }
  }
  // No token: the console's session cookie, when sessions are accepted here. Without either,
  // the dashboard has auth_timeout to send an auth frame.
  if (!token_given && shared_->lookup) {
    const auto cookie = gateway::session_cookie(req[http::field::cookie]);
    if (!cookie.empty())
      return accept_console_session(shared_, std::move(stream), std::move(req), std::move(hold),
                                    std::string(cookie));
  }
  open_session(shared_, std::move(stream), std::move(req), std::move(hold), std::move(claims),
               std::nullopt);
}

void service::shutdown() {
  std::vector<std::shared_ptr<ws_session>> sessions;
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->stopping) return;
    shared_->stopping = true;
    for (auto& [id, weak] : shared_->sessions)
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
  }
  for (auto& s : sessions) s->go_away();
  if (shared_->revoked_subscription != 0) shared_->redis.unsubscribe(shared_->revoked_subscription);
  shared_->events.stop();
}

const service_stats& service::stats() const noexcept {
  return shared_->stats;
}
const hub_stats& service::hub_statistics() const noexcept {
  return shared_->events.stats();
}

}  // namespace bellhop::realtime
