#include "bellhop/transport/webchat.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>
#include <deque>
#include <map>
#include <set>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/secrets.hpp"
#include "bellhop/core/client_address.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/json/utf8.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/coalescing_stream.hpp"
#include "bellhop/server/connection_limits.hpp"
#include "bellhop/server/frame_text.hpp"
#include "bellhop/server/json_response.hpp"
#include "bellhop/server/static_file.hpp"
#include "bellhop/server/upgrade_refusal.hpp"
#include "bellhop/transport/lua.hpp"
#include "web_assets.hpp"
#include "webchat_frame.hpp"

namespace bellhop::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;

struct webchat_service::shared {
  shared(const services& s, const contract::key_space& k, const transport_options& o, inbound_sink i,
         metrics_registry& metrics)
      : svc(s),
        keys(k),
        opts(o),
        ingest(std::move(i)),
        open(metrics.add_gauge("bellhop_webchat_sockets", "Open web chat guest sockets.")
                 .labels({})),
        refused(metrics.add_counter("bellhop_webchat_sockets_refused_total",
                                    "Web chat upgrades refused at channels.webchat.max_sockets "
                                    "(limit=\"total\") or max_sockets_per_ip (limit=\"per_ip\").",
                                    {"limit"})),
        slow_closed(metrics
                        .add_counter("bellhop_webchat_slow_closed_total",
                                     "Web chat sockets closed because their unsent bytes exceeded "
                                     "channels.webchat.send_queue_bytes.")
                        .labels({})),
        sockets(o.webchat
                    ? connection_limits::make(o.webchat->max_sockets,
                                              o.webchat->max_sockets_per_ip, &open)
                    : connection_limits::make(0, 0)),
        poison(poison_metric(metrics)) {}

  const services& svc;
  const contract::key_space& keys;
  const transport_options opts;
  inbound_sink ingest;
  gauge& open;
  counter_family& refused;
  counter& slow_closed;
  const std::shared_ptr<connection_limits> sockets;
  counter_family& poison;
  broker::script move_to_dead =
      broker::script::make("webchat_dead", std::string(lua::webchat_dead));
};

namespace {

constexpr std::size_t max_frame_bytes = 64 * 1024;
// Without it Linux grows a socket's send buffer to megabytes for a guest who does not read, on
// top of send_queue_bytes.
constexpr std::size_t kernel_send_buffer = 64 * 1024;
// A guest's frames, and the reply frames Bellhop wrote to outboxes (a reply's text is at most
// 64 KiB, 6 bytes per escaped byte at worst).
constexpr json::limits reply_limits{.max_bytes = 1 << 20, .max_depth = 32};
constexpr std::size_t token_chars = 43;  // 32 random bytes, base64url without padding

bool token_shaped(std::string_view t) {
  return t.size() == token_chars && std::all_of(t.begin(), t.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         });
}

// The guest's name everywhere else: the token stays a secret between Bellhop and the browser.
std::string guest_of(std::string_view token) {
  return "wc_" + contract::sha256_hex(token, 16);
}

bool is_guest(std::string_view v) {
  return v.size() == 35 && v.starts_with("wc_") && std::all_of(v.begin() + 3, v.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

class guest_socket : public std::enable_shared_from_this<guest_socket> {
 public:
  // `client`: the client_key of the guest's address (per-address rate limit); `holds`: the
  // connection's slots, released when the socket is gone.
  guest_socket(beast::tcp_stream&& stream, std::shared_ptr<webchat_service::shared> sh,
               const webchat_site& site, std::string token, std::string client,
               std::vector<std::shared_ptr<void>> holds)
      : site_(site),
        holds_(std::move(holds)),
        ws_(std::move(stream)),
        strand_(ws_.get_executor()),
        shared_(std::move(sh)),
        token_(std::move(token)),
        guest_(guest_of(token_)),
        client_(std::move(client)) {}

  ~guest_socket() {
    if (subscription_ && shared_->svc.redis) shared_->svc.redis->unsubscribe(*subscription_);
  }

  void start(request req) {
    beast::get_lowest_layer(ws_).expires_never();
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(
        asio::socket_base::send_buffer_size(static_cast<int>(kernel_send_buffer)), ignored);
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::seconds(60);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "bellhop"); }));
    ws_.read_message_max(max_frame_bytes);
    ws_.async_accept(req, [self = shared_from_this()](error_code ec) {
      if (ec) return;
      self->on_open();
    });
  }

 private:
  const webchat_config& chat() const { return *shared_->opts.webchat; }

  void on_open() {
    send(R"({"type":"welcome","session":)" + json::quote(token_) + R"(,"guest":)" +
         json::quote(guest_) + R"(,"property_id":)" + json::quote(site_.property_id) + "}");
    // Replies published while this socket is open come here; each (re)subscription on Redis
    // also brings what waits in the outbox (sent while the guest was away or the link down).
    auto weak = weak_from_this();
    subscription_ = shared_->svc.redis->subscribe(
        shared_->keys.webchat_channel(guest_), strand_,
        [weak](const std::string&, std::shared_ptr<const std::string> frame) {
          if (auto self = weak.lock()) self->reply(*frame);
        },
        [weak](const std::string&) {
          if (auto self = weak.lock()) self->load_outbox();
        });
    read();
  }

  void load_outbox() {
    shared_->svc.redis->post({"HGETALL", shared_->keys.webchat_outbox(guest_)}, strand_,
                             [self = shared_from_this()](error_code ec, broker::reply r) {
                               if (ec || !r.is_array()) return;  // the next subscription retries
                               std::map<std::string, std::string> by_id;  // ids sort by time
                               const auto& e = r.elements();
                               for (std::size_t i = 0; i + 1 < e.size(); i += 2)
                                 by_id[e[i].str()] = e[i + 1].str();
                               for (auto& [id, frame] : by_id)
                                 self->backlog_.emplace_back(id, std::move(frame));
                               self->drain_backlog();
                             });
  }

  // What waited in the outbox may be more than send_queue_bytes: it goes out as the socket
  // drains, half the bound at a time, so a guest who reads is not closed for it. A frame that
  // cannot be shown moves to the dead letters.
  void drain_backlog() {
    auto& out = ws_.next_layer();
    while (!closed_ && !backlog_.empty() &&
           (out.unsent() == 0 ||
            out.unsent() + backlog_.front().second.size() <= chat().send_queue_bytes / 2)) {
      const auto& [id, frame] = backlog_.front();
      if (auto why = reply(frame); !why.empty()) dead_letter(id, frame, why);
      backlog_.pop_front();
    }
    if (closed_ || backlog_.empty() || draining_) return;
    draining_ = true;
    out.after_flush([self = shared_from_this()] {
      self->draining_ = false;
      self->drain_backlog();
    });
  }

  // A reply frame, once per socket (live and held copies of one reply may both arrive). "" when
  // it was shown or had been; else why it cannot be (the poison metric's reason).
  std::string_view reply(const std::string& frame) {
    if (!server::frame_text_ok(frame, "a web chat reply")) return "invalid_utf8";
    rapidjson::Document d;
    const auto parsed = json::parse(frame, d, reply_limits);
    if (!parsed || !d.IsObject()) return poison_reason(parsed);
    if (!d.HasMember("id") || !d["id"].IsString()) return "invalid";
    if (!shown_.insert(d["id"].GetString()).second) return {};
    send(frame);
    return {};
  }

  // An outbox frame Bellhop cannot read: out of the outbox, onto webchat:dead with the reason.
  void dead_letter(const std::string& id, const std::string& frame, std::string_view why) {
    const auto outbox = shared_->keys.webchat_outbox(guest_);
    report_poison(
        shared_->poison, "webchat_outbox", outbox, why,
        "a reply frame is not a JSON object with an id; moved to " + shared_->keys.webchat_dead());
    rapidjson::StringBuffer b;
    json::writer w(b);
    w.StartObject();
    json::put(w, "reason", why);
    json::put(w, "guest", guest_);
    json::put(w, "id", id);
    json::put(w, "element", valid_utf8(frame));
    json::put(w, "failed_at", contract::format_timestamp(std::chrono::system_clock::now()));
    w.EndObject();
    // Only the socket that removed it from the outbox files it (others may read it too).
    shared_->svc.redis->eval(shared_->move_to_dead, {outbox, shared_->keys.webchat_dead()},
                             {id, frame, std::string(b.GetString(), b.GetSize())}, strand_,
                             [](error_code, broker::reply) {});
  }

  // Reads the next frame unless max_in_flight of the guest's frames still wait for Redis: a
  // guest who sends faster than Redis answers is not read from (TCP pushes back) until some
  // are done.
  void read() {
    if (closed_) return;
    if (in_flight_ >= chat().max_in_flight) {
      read_paused_ = true;
      return;
    }
    ws_.async_read(buffer_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return;  // closed, timed out, or a frame over the limit: the socket ends
      const auto text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->on_frame(text);
      self->read();
    });
  }

  void begin_work() { ++in_flight_; }
  void end_work() {
    --in_flight_;
    if (read_paused_ && in_flight_ < chat().max_in_flight) {
      read_paused_ = false;
      read();
    }
  }

  void on_frame(const std::string& text) {
    auto frame = parse_webchat_frame(text);
    switch (frame.what) {
      case webchat_frame::kind::refused:
        return send(frame.error);
      case webchat_frame::kind::received:
        begin_work();
        shared_->svc.redis->post(
            {"HDEL", shared_->keys.webchat_outbox(guest_), frame.id}, strand_,
            [self = shared_from_this()](error_code, broker::reply) { self->end_work(); });
        return;
      case webchat_frame::kind::message:
        return on_message(frame);
    }
  }

  void on_message(const webchat_frame& frame) {
    const std::string& client_id = frame.client_id;
    // The canonical inbound message: validated and enriched like POST /v1/messages/inbound.
    const inbound_limits limits{shared_->opts.max_text_bytes};
    auto g = webchat_guest_message(guest_, client_id, frame.text);
    g.account = site_.id;
    auto m =
        validate_inbound_message(g, site_.property_id, limits, std::chrono::system_clock::now());
    if (!m) return send(webchat_error_frame(m.error().code, m.error().message, client_id));
    begin_work();
    // Per guest and per address (docs/webchat.md), one check for both: a refused message is
    // answered and forgotten, never queued.
    std::vector<ratelimit::limit_key> rate;
    auto& rl = *shared_->svc.limits;
    if (rl.webchat_session) rate.push_back({rl.webchat_session, guest_});
    if (rl.webchat_ip) rate.push_back({rl.webchat_ip, client_});
    if (rate.empty()) return ingest(std::move(*m), client_id);
    rl.limiter.check(
        rate, 1, strand_,
        [self = shared_from_this(), client_id,
         msg = std::make_shared<inbound_message>(std::move(*m))](ratelimit::decision d) {
          if (d.allowed) return self->ingest(std::move(*msg), client_id);
          self->end_work();
          if (d.degraded) {
            return self->send(webchat_error_frame("unavailable", "not stored; send it again", client_id));
          }
          self->send(webchat_error_frame("rate_limited", "too many messages; wait before sending more",
                                 client_id, d.retry_after_ms < 0 ? 86'400'000 : d.retry_after_ms));
        });
  }

  void ingest(inbound_message m, const std::string& client_id) {
    shared_->ingest(
        std::move(m), strand_, [self = shared_from_this(), client_id](ingest_outcome out) {
          self->end_work();
          using o = ingest_outcome::result;
          if (out.what == o::queued || out.what == o::duplicate) {
            self->send(R"({"type":"ack","client_id":)" + json::quote(client_id) + R"(,"id":)" +
                       json::quote(out.id) + R"(,"status":)" +
                       (out.what == o::queued ? "\"queued\"" : "\"duplicate\"") + "}");
          } else if (out.what == o::full) {  // nothing kept; Redis is at maxmemory
            self->send(webchat_error_frame("redis_full", std::string(redis_full_message), client_id));
          } else {  // nothing kept: the browser sends it again
            self->send(webchat_error_frame("unavailable", "not stored; send it again", client_id));
          }
        });
  }

  // Every frame (welcome, acks, errors, replies) goes through the coalescing layer, whose
  // unsent bytes are bounded by send_queue_bytes: a guest who does not read is closed.
  void send(const std::string& frame) {
    if (closed_) return;
    if (ws_.next_layer().unsent() + frame.size() > chat().send_queue_bytes) return close_slow();
    ws_.next_layer().write_text(frame);
  }

  void close_slow() {
    closed_ = true;
    shared_->slow_closed.inc();
    if (std::uint64_t unlogged = 0; shared_->sockets->should_warn(unlogged)) {
      spdlog::warn(
          "webchat: guest {} ({}) is not reading; closing its socket ({} bytes unsent; {} more "
          "such closes not logged before this one)",
          guest_, client_, ws_.next_layer().unsent(), unlogged);
    }
    ws_.next_layer().discard_pending();
    error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  const webchat_site& site_;  // of the options the shared state holds
  std::vector<std::shared_ptr<void>> holds_;
  websocket::stream<server::coalescing_stream> ws_;
  asio::any_io_executor strand_;
  std::shared_ptr<webchat_service::shared> shared_;
  const std::string token_, guest_, client_;
  std::optional<broker::broker::subscription_id> subscription_;
  beast::flat_buffer buffer_;
  std::set<std::string> shown_;
  std::deque<std::pair<std::string, std::string>> backlog_;  // outbox (id, frame) not yet sent
  bool draining_ = false;
  std::size_t in_flight_ = 0;  // frames of the guest's waiting for Redis
  bool read_paused_ = false;
  bool closed_ = false;
};

// Answers an upgrade request with a JSON error and closes.
void refuse(beast::tcp_stream stream, const request& req, http::status status,
            std::string_view code, std::string_view message) {
  refuse_upgrade(std::move(stream), json_error(request_shell(req), status, code, message));
}

}  // namespace

webchat_service::webchat_service(const services& svc, const contract::key_space& keys,
                                 const transport_options& opts,
                                 inbound_sink ingest, metrics_registry& metrics)
    : shared_(std::make_shared<shared>(svc, keys, opts, std::move(ingest), metrics)) {}

webchat_service::~webchat_service() = default;

void webchat_service::accept(beast::tcp_stream stream, request req, upgrade_context ctx) {
  const auto& chat = shared_->opts.webchat;
  if (!chat) {
    return refuse(std::move(stream), req, http::status::not_found, "not_configured",
                  "channels.webchat is not configured on this gateway");
  }
  std::string token, site_id;
  bool has_site = false;
  if (auto url = boost::urls::parse_origin_form(req.target()); url) {
    if (auto it = url->params().find("session"); it != url->params().end()) token = (*it).value;
    if (auto it = url->params().find("site"); it != url->params().end()) {
      has_site = true;
      site_id = (*it).value;
    }
  }
  // The site the widget names (data-site), or the only one; several sites and none named: the
  // one whose origin the page is on.
  const webchat_site* site = nullptr;
  for (const auto& s : chat->sites) {
    if (has_site ? s.id == site_id
                 : chat->sites.size() == 1 ||
                       (!s.allowed_origin.empty() && req[http::field::origin] == s.allowed_origin))
      site = &s;
  }
  if (!site) {
    return refuse(std::move(stream), req, http::status::not_found, "unknown_site",
                  has_site ? "no web chat site of that id on this gateway"
                           : "name the site: ?site=<channels.webchat.sites[].id>");
  }
  if (!site->allowed_origin.empty() && req[http::field::origin] != site->allowed_origin) {
    return refuse(std::move(stream), req, http::status::forbidden, "forbidden",
                  "this chat belongs to " + site->allowed_origin);
  }
  const auto client = client_key(ctx.client);
  auto why = connection_limits::refusal::none;
  auto slot = shared_->sockets->acquire(client, why);
  if (!slot) {
    const bool total = why == connection_limits::refusal::total;
    shared_->refused.labels({total ? "total" : "per_ip"}).inc();
    if (std::uint64_t unlogged = 0; shared_->sockets->should_warn(unlogged)) {
      spdlog::warn(
          "webchat: refusing a socket from {}: {} ({} such refusals not logged before "
          "this one)",
          client,
          total ? "channels.webchat.max_sockets are open"
                : "it has channels.webchat.max_sockets_per_ip open",
          unlogged);
    }
    if (total) {
      return refuse_upgrade(std::move(stream),
                            service_unavailable(request_shell(req), "too_many_connections",
                                                "web chat is at its connection limit; retry later",
                                                std::chrono::seconds(5)));
    }
    return refuse_upgrade(
        std::move(stream),
        too_many_requests(request_shell(req), "too_many_client_connections",
                          "too many chat connections from your address; close some and retry",
                          std::chrono::seconds(5)));
  }
  if (!shared_->svc.redis || !shared_->svc.limits) {
    return refuse_upgrade(std::move(stream), service_unavailable(request_shell(req), "unavailable",
                                                                 "Bellhop is starting; retry later",
                                                                 std::chrono::seconds(1)));
  }
  if (!token.empty() && !token_shaped(token)) {
    return refuse(std::move(stream), req, http::status::bad_request, "invalid_session",
                  "session must be the token a welcome frame gave");
  }
  if (token.empty()) {
    auto fresh = contract::random_secret(32);
    if (!fresh) {
      return refuse(std::move(stream), req, http::status::service_unavailable, "unavailable",
                    "no randomness for a session token");
    }
    token = std::move(*fresh);
  }
  std::make_shared<guest_socket>(
      std::move(stream), shared_, *site, std::move(token), client,
      std::vector<std::shared_ptr<void>>{std::move(ctx.slot), std::move(slot)})
      ->start(std::move(req));
}

void add_webchat_routes(router& routes, const transport_options& opts) {
  const bool configured = opts.webchat.has_value();
  routes.add(http::verb::get, "/v1/webchat/widget.js",
             [configured, widget = static_file::of(web::webchat_widget,
                                                   "text/javascript; charset=utf-8")](
                 const request& req, responder res) {
               if (!configured) {
                 return res.send(json_error(req, http::status::not_found, "not_configured",
                                            "web chat is not configured (channels.webchat)"));
               }
               auto out = serve_static(req, widget);
               // Revalidated every 5 minutes: an upgraded Bellhop's widget reaches guests soon.
               out.set(http::field::cache_control, "public, max-age=300");
               out.set("X-Content-Type-Options", "nosniff");
               // Loaded by the hotel's pages.
               out.set("Cross-Origin-Resource-Policy", "cross-origin");
               res.send(std::move(out));
             });
}

outbound_channel webchat_lane(const webchat_config& c, broker::broker& redis,
                              const contract::key_space& keys) {
  auto deliver = std::make_shared<broker::script>(
      broker::script::make("webchat_deliver", std::string(lua::webchat_deliver)));
  outbound_channel lane;
  lane.name = "webchat";
  const std::string hold = std::to_string(c.hold_s);
  lane.send = [deliver, &redis, &keys, hold](const channels::outbound_message& m,
                                             asio::any_io_executor ex,
                                             std::function<void(channels::send_result)> done) {
    if (!is_guest(m.to)) {
      channels::send_result out;
      out.outcome = channels::send_outcome::permanent;
      out.reason = "\"to\" is not a web-chat guest (wc_ and 32 hex digits): " + m.to;
      return asio::post(ex, [done, out = std::move(out)]() mutable { done(std::move(out)); });
    }
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    w.StartObject();
    w.Key("type");
    w.String("message");
    w.Key("id");
    w.String(m.id.c_str());
    w.Key("text");
    w.String(m.text.c_str(), static_cast<rapidjson::SizeType>(m.text.size()));
    w.Key("attachments");
    w.RawValue(m.attachments_json.data(), m.attachments_json.size(), rapidjson::kArrayType);
    w.Key("sent_at");
    const auto now = contract::format_timestamp(std::chrono::system_clock::now());
    w.String(now.c_str());
    w.EndObject();
    if (!json::is_valid_utf8({b.GetString(), b.GetSize()})) {
      // The guest's browser would close the socket on it (1007): a dead letter, not a send.
      channels::send_result out;
      out.outcome = channels::send_outcome::permanent;
      out.reason = "the reply is not valid UTF-8";
      return asio::post(ex, [done, out = std::move(out)]() mutable { done(std::move(out)); });
    }
    redis.eval(*deliver, {keys.webchat_outbox(m.to)},
               {m.id, std::string(b.GetString(), b.GetSize()), hold, keys.webchat_channel(m.to)},
               ex, [done, id = m.id](error_code ec, broker::reply r) {
                 channels::send_result out;
                 if (ec || r.is_error()) {
                   out.outcome = channels::send_outcome::transient;
                   out.reason =
                       "the reply could not be stored: " + (ec ? ec.message() : r.to_string());
                 } else {
                   out.outcome = channels::send_outcome::sent;
                   out.provider_message_id = id;
                 }
                 done(std::move(out));
               });
  };
  // A web-chat guest is on the hotel's own site: no provider limit to keep.
  lane.limits = [](const channels::outbound_message&) {
    return std::vector<ratelimit::limit_key>{};
  };
  return lane;
}

}  // namespace bellhop::gateway
