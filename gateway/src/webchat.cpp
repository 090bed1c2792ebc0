#include "webchat.hpp"

#include <openssl/rand.h>
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

#include "bellhop/gateway/inbound_message.hpp"
#include "bellhop/gateway/json_response.hpp"
#include "ids.hpp"
#include "lua_scripts.hpp"
#include "web_assets.hpp"
#include "webchat_frame.hpp"

namespace bellhop::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;

struct webchat_service::shared {
  const services& svc;
  const key_space& keys;
  const config& cfg;
  inbound_sink ingest;
};

namespace {

constexpr std::size_t max_frame_bytes = 64 * 1024;
constexpr std::size_t max_queued_frames = 256;  // a guest whose browser stops reading is cut off
constexpr std::size_t token_chars = 43;        // 32 random bytes, base64url without padding

std::string json_string(std::string_view v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  return {b.GetString(), b.GetSize()};
}

bool token_shaped(std::string_view t) {
  return t.size() == token_chars && std::all_of(t.begin(), t.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
         });
}

std::optional<std::string> new_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) return std::nullopt;
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      out += alphabet[(acc >> (bits - 6)) & 63];
      bits -= 6;
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];
  return out;
}

// The guest's name everywhere else: the token stays a secret between Bellhop and the browser.
std::string guest_of(std::string_view token) { return "wc_" + sha256_hex(token, 16); }

bool is_guest(std::string_view v) {
  return v.size() == 35 && v.starts_with("wc_") &&
         std::all_of(v.begin() + 3, v.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

class guest_socket : public std::enable_shared_from_this<guest_socket> {
 public:
  guest_socket(beast::tcp_stream&& stream, std::shared_ptr<webchat_service::shared> sh,
               std::string token)
      : ws_(std::move(stream)),
        strand_(ws_.get_executor()),
        shared_(std::move(sh)),
        token_(std::move(token)),
        guest_(guest_of(token_)) {}

  ~guest_socket() {
    if (subscription_ && shared_->svc.redis) shared_->svc.redis->unsubscribe(*subscription_);
  }

  void start(request req) {
    beast::get_lowest_layer(ws_).expires_never();
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
  const webchat_config& chat() const { return *shared_->cfg.channels.webchat; }

  void on_open() {
    send(R"({"type":"welcome","session":)" + json_string(token_) + R"(,"guest":)" +
         json_string(guest_) + R"(,"property_id":)" + json_string(chat().property_id) + "}");
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
                               for (auto& [id, frame] : by_id) self->reply(frame);
                             });
  }

  // A reply frame, once per socket (live and held copies of one reply may both arrive).
  void reply(const std::string& frame) {
    rapidjson::Document d;
    d.Parse(frame.c_str());
    if (!d.IsObject() || !d.HasMember("id") || !d["id"].IsString()) return;
    if (!shown_.insert(d["id"].GetString()).second) return;
    send(frame);
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return;  // closed, timed out, or a frame over the limit: the socket ends
      const auto text = beast::buffers_to_string(self->buffer_.data());
      self->buffer_.consume(self->buffer_.size());
      self->on_frame(text);
      self->read();
    });
  }

  void on_frame(const std::string& text) {
    auto frame = parse_webchat_frame(text);
    switch (frame.what) {
      case webchat_frame::kind::refused:
        return send(std::move(frame.error));
      case webchat_frame::kind::received:
        shared_->svc.redis->post({"HDEL", shared_->keys.webchat_outbox(guest_), frame.id}, strand_,
                                 [](error_code, broker::reply) {});
        return;
      case webchat_frame::kind::message:
        return on_message(frame);
    }
  }

  void on_message(const webchat_frame& frame) {
    const std::string& client_id = frame.client_id;
    // The canonical inbound message: validated and enriched like POST /v1/messages/inbound.
    const std::string body =
        webchat_inbound_body(chat().property_id, guest_, client_id, frame.text);
    const inbound_limits limits{static_cast<std::size_t>(shared_->cfg.inbound.max_text_bytes)};
    auto m = parse_inbound_message(body, limits, std::chrono::system_clock::now());
    if (!m) return send(webchat_error_frame(m.error().code, m.error().message, client_id));
    shared_->ingest(std::move(*m), strand_,
                    [self = shared_from_this(), client_id](ingest_outcome out) {
                      using o = ingest_outcome::result;
                      if (out.what == o::queued || out.what == o::duplicate) {
                        self->send(R"({"type":"ack","client_id":)" + json_string(client_id) +
                                   R"(,"id":)" + json_string(out.id) + R"(,"status":)" +
                                   (out.what == o::queued ? "\"queued\"" : "\"duplicate\"") + "}");
                      } else {  // nothing kept: the browser sends it again
                        self->send(webchat_error_frame("unavailable", "not stored; send it again",
                                                       client_id));
                      }
                    });
  }

  void send(std::string frame) {
    if (queue_.size() >= max_queued_frames) {
      error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    queue_.push_back(std::move(frame));
    if (queue_.size() == 1) write();
  }

  void write() {
    ws_.text(true);
    ws_.async_write(asio::buffer(queue_.front()),
                    [self = shared_from_this()](error_code ec, std::size_t) {
                      if (ec) return;
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) self->write();
                    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  asio::any_io_executor strand_;
  std::shared_ptr<webchat_service::shared> shared_;
  const std::string token_, guest_;
  std::optional<broker::broker::subscription_id> subscription_;
  beast::flat_buffer buffer_;
  std::deque<std::string> queue_;
  std::set<std::string> shown_;
};

// Answers an upgrade request with a JSON error and closes.
void refuse(beast::tcp_stream stream, const request& req, http::status status,
            std::string_view code, std::string_view message) {
  struct state {
    beast::tcp_stream stream;
    http::response<http::string_body> res;
  };
  auto s = std::make_shared<state>(state{std::move(stream), {status, req.version()}});
  s->res.set(http::field::server, "bellhop");
  s->res.set(http::field::content_type, "application/json");
  s->res.keep_alive(false);
  s->res.body() = R"({"error":{"code":)" + json_string(code) + R"(,"message":)" +
                  json_string(message) + "}}";
  s->res.prepare_payload();
  s->stream.expires_after(std::chrono::seconds(5));
  http::async_write(s->stream, s->res, [s](error_code, std::size_t) {
    error_code ignored;
    s->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  });
}

}  // namespace

webchat_service::webchat_service(const services& svc, const key_space& keys, const config& cfg,
                                 inbound_sink ingest)
    : shared_(std::make_shared<shared>(shared{svc, keys, cfg, std::move(ingest)})) {}

webchat_service::~webchat_service() = default;

void webchat_service::accept(beast::tcp_stream stream, request req) {
  const auto& chat = shared_->cfg.channels.webchat;
  if (!chat) {
    return refuse(std::move(stream), req, http::status::not_found, "not_configured",
                  "channels.webchat is not configured on this gateway");
  }
  if (!chat->allowed_origin.empty() && req[http::field::origin] != chat->allowed_origin) {
    return refuse(std::move(stream), req, http::status::forbidden, "forbidden",
                  "this chat belongs to " + chat->allowed_origin);
  }
  if (!shared_->svc.redis) {
    return refuse(std::move(stream), req, http::status::service_unavailable, "unavailable",
                  "Bellhop is starting; retry later");
  }
  std::string token;
  if (auto url = boost::urls::parse_origin_form(req.target()); url) {
    if (auto it = url->params().find("session"); it != url->params().end())
      token = (*it).value;
  }
  if (!token.empty() && !token_shaped(token)) {
    return refuse(std::move(stream), req, http::status::bad_request, "invalid_session",
                  "session must be the token a welcome frame gave");
  }
  if (token.empty()) {
    auto fresh = new_token();
    if (!fresh) {
      return refuse(std::move(stream), req, http::status::service_unavailable, "unavailable",
                    "no randomness for a session token");
    }
    token = std::move(*fresh);
  }
  std::make_shared<guest_socket>(std::move(stream), shared_, std::move(token))->start(std::move(req));
}

void add_webchat_routes(router& routes, const config& cfg) {
  // The digest of what is served: a new Bellhop with another widget gets another ETag.
  static const std::string etag = "\"" + sha256_hex(web::webchat_widget, 12) + "\"";
  const bool configured = cfg.channels.webchat.has_value();
  routes.add(http::verb::get, "/v1/webchat/widget.js", [configured](const request& req,
                                                                    responder res) {
    if (!configured) {
      return res.send(json_error(req, http::status::not_found, "not_configured",
                                 "web chat is not configured (channels.webchat)"));
    }
    const bool fresh = req[http::field::if_none_match] == etag;
    response out{fresh ? http::status::not_modified : http::status::ok, req.version()};
    out.set(http::field::etag, etag);
    // Revalidated every 5 minutes: an upgraded Bellhop's widget reaches the guests soon.
    out.set(http::field::cache_control, "public, max-age=300");
    out.set("X-Content-Type-Options", "nosniff");
    out.set("Cross-Origin-Resource-Policy", "cross-origin");  // loaded by the hotel's pages
    if (!fresh) {
      out.set(http::field::content_type, "text/javascript; charset=utf-8");
      out.body() = std::string(web::webchat_widget);
    }
    out.keep_alive(req.keep_alive());
    out.prepare_payload();
    res.send(std::move(out));
  });
}

outbound_channel webchat_lane(const webchat_config& c, broker::broker& redis,
                              const key_space& keys) {
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
    const auto now = format_timestamp(std::chrono::system_clock::now());
    w.String(now.c_str());
    w.EndObject();
    redis.eval(*deliver, {keys.webchat_outbox(m.to)},
               {m.id, std::string(b.GetString(), b.GetSize()), hold, keys.webchat_channel(m.to)},
               ex, [done, id = m.id](error_code ec, broker::reply r) {
                 channels::send_result out;
                 if (ec || r.is_error()) {
                   out.outcome = channels::send_outcome::transient;
                   out.reason = "the reply could not be stored: " +
                                (ec ? ec.message() : r.to_string());
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
