#include "inbound_api.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "bellhop/gateway/inbound_message.hpp"
#include "bellhop/gateway/json_response.hpp"
#include "lua_scripts.hpp"

namespace bellhop::gateway {
namespace {

response unauthorized(const request& req) {
  auto res = json_error(req, http::status::unauthorized, "unauthorized",
                        "missing or unknown adapter key: send Authorization: Bearer <key>");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

response unavailable(const request& req, std::string_view why) {
  auto res = json_error(req, http::status::service_unavailable, "unavailable",
                        std::string("the message was not stored: ") + std::string(why) +
                            "; retry later");
  res.set(http::field::retry_after, "1");
  return res;
}

bool is_json_content_type(std::string_view value) {
  auto semicolon = value.find(';');
  auto type = value.substr(0, semicolon);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (type.size() != 16) return false;
  for (std::size_t i = 0; i < type.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(type[i])) != "application/json"[i]) return false;
  }
  return true;
}

std::string json_string(std::string_view s) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return {out.GetString(), out.GetSize()};
}

struct inbound_context {
  const services& svc;
  const key_space& keys;
  const config& cfg;
  const adapter_auth& auth;
  broker::script ingest = broker::script::make("ingest", std::string(lua::ingest));
  inbound_limits limits;
  counter_family& results;
  // Cells of `results` looked up once (the family lookup takes a lock).
  counter& queued = results.labels({"queued"});
  counter& duplicate = results.labels({"duplicate"});
  counter& unavailable = results.labels({"unavailable"});
  // When Redis last refused the ingest script (steady clock, ns): logged at most every 10 s.
  std::atomic<std::int64_t> last_refusal_logged{0};  // 0: never

  // Redis answering with an error (not an outage: the broker reports those) is a data or
  // configuration problem the operator must see, e.g. a foreign key of another type.
  void log_refusal(const broker::reply& r) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_refusal_logged.load(std::memory_order_relaxed);
    if ((last != 0 && now - last < std::chrono::nanoseconds(std::chrono::seconds(10)).count()) ||
        !last_refusal_logged.compare_exchange_strong(last, now, std::memory_order_relaxed))
      return;
    spdlog::warn("ingest: Redis refused the message ({}); answering 503 (logged at most every "
                 "10 s)",
                 r.is_error() ? r.str() : std::string("unexpected reply"));
  }
};

void ingest(const std::shared_ptr<inbound_context>& ctx, const request& req, responder res) {
  const auto* key = ctx->auth.authenticate(req[http::field::authorization]);
  if (!key) {
    ctx->results.labels({"unauthorized"}).inc();
    res.send(unauthorized(req));
    return;
  }
  if (!is_json_content_type(req[http::field::content_type])) {
    ctx->results.labels({"rejected"}).inc();
    res.send(json_error(req, http::status::unsupported_media_type, "unsupported_media_type",
                        "Content-Type must be application/json"));
    return;
  }
  auto parsed = parse_inbound_message(req.body(), ctx->limits, std::chrono::system_clock::now());
  if (!parsed) {
    const auto& e = parsed.error();
    ctx->results.labels({"rejected"}).inc();
    res.send(json_error(req, static_cast<http::status>(e.status), e.code, e.message, e.field));
    return;
  }
  auto& msg = *parsed;
  if (!adapter_auth::allows(*key, msg.property_id)) {
    ctx->results.labels({"forbidden"}).inc();
    res.send(json_error(req, http::status::forbidden, "forbidden",
                        "this adapter key may not post for property '" + msg.property_id + "'",
                        "property_id"));
    return;
  }
  if (!ctx->svc.redis) {
    ctx->results.labels({"unavailable"}).inc();
    res.send(unavailable(req, "Bellhop is starting"));
    return;
  }

  const auto& k = ctx->keys;
  const auto& in = ctx->cfg.inbound;
  const auto& rt = ctx->cfg.realtime;
  std::vector<std::string> keys = {k.dedup(msg.channel, msg.external_id),
                                   k.inbound(),
                                   k.message(msg.id),
                                   k.property_seq(msg.property_id),
                                   k.property_events(msg.property_id),
                                   k.property_conversations_index(msg.property_id),
                                   k.conversation(msg.conversation_id),
                                   k.conversation_messages(msg.conversation_id)};
  // The event is serialized here, once; the script only prepends its seq.
  std::string event_rest = "\"property_id\":" + json_string(msg.property_id) +
                           ",\"event\":\"message.created\",\"data\":" + msg.envelope +
                           ",\"ts\":\"" + msg.received_at + "\"}";
  std::vector<std::string> args = {msg.id,
                                   std::move(msg.envelope),
                                   std::to_string(in.dedup_ttl_s),
                                   std::to_string(in.message_ttl_s),
                                   k.property_channel(msg.property_id),
                                   std::to_string(in.history_max),
                                   std::move(event_rest),
                                   msg.property_id,
                                   msg.channel,
                                   msg.conversation_id,
                                   msg.received_at,
                                   std::to_string(msg.received_ms),
                                   std::move(msg.from),
                                   std::move(msg.guest_name),
                                   std::to_string(rt.conversation_ttl_s),
                                   std::to_string(rt.recent_messages)};
  ctx->svc.redis->eval(
      ctx->ingest, std::move(keys), std::move(args), res.executor(),
      [ctx, res, shell = request_shell(req), conversation = msg.conversation_id](
          boost::system::error_code ec, broker::reply r) {
        // 202 only once Redis has answered: the message is in inbound:messages.
        if (ec || !r.is_array() || r.elements().size() < 2 || !r.elements()[0].is_integer()) {
          if (ec == broker::errc::redis_error || (!ec && !r.is_array())) ctx->log_refusal(r);
          ctx->unavailable.inc();
          res.send(unavailable(shell, ec ? ec.message() : "unexpected reply from Redis"));
          return;
        }
        const bool queued = r.elements()[0].integer() == 1;
        const std::string& id = r.elements()[1].str();
        (queued ? ctx->queued : ctx->duplicate).inc();
        if (queued) {
          res.send(json_response(shell, http::status::accepted,
                                 "{\"id\":" + json_string(id) +
                                     ",\"status\":\"queued\",\"conversation_id\":" +
                                     json_string(conversation) + "}"));
        } else {
          res.send(json_response(shell, http::status::ok,
                                 "{\"id\":" + json_string(id) + ",\"status\":\"duplicate\"}"));
        }
      });
}

void message_status(const std::shared_ptr<inbound_context>& ctx, const request& req,
                    responder res) {
  const auto* key = ctx->auth.authenticate(req[http::field::authorization]);
  if (!key) {
    res.send(unauthorized(req));
    return;
  }
  const std::string id(res.param("id"));
  if (id.empty() || id.size() > 64) {
    res.send(json_error(req, http::status::not_found, "not_found", "no such message"));
    return;
  }
  if (!ctx->svc.redis) {
    res.send(unavailable(req, "Bellhop is starting"));
    return;
  }
  const adapter_key key_copy = *key;
  ctx->svc.redis->post(
      {"HGETALL", ctx->keys.message(id)}, res.executor(),
      [res, shell = request_shell(req), key_copy](boost::system::error_code ec, broker::reply r) {
        if (ec || !r.is_array()) {
          res.send(json_error(shell, http::status::service_unavailable, "unavailable",
                              "Redis is unavailable; retry later"));
          return;
        }
        rapidjson::StringBuffer out;
        rapidjson::Writer<rapidjson::StringBuffer> w(out);
        std::string property;
        w.StartObject();
        const auto& e = r.elements();
        for (std::size_t i = 0; i + 1 < e.size(); i += 2) {
          if (e[i].str() == "property_id") property = e[i + 1].str();
          w.Key(e[i].str().data(), static_cast<rapidjson::SizeType>(e[i].str().size()));
          w.String(e[i + 1].str().data(), static_cast<rapidjson::SizeType>(e[i + 1].str().size()));
        }
        w.EndObject();
        // A key for another property learns nothing, not even that the id exists.
        if (e.empty() || !adapter_auth::allows(key_copy, property)) {
          res.send(json_error(shell, http::status::not_found, "not_found", "no such message"));
          return;
        }
        res.send(json_response(shell, http::status::ok, std::string(out.GetString(), out.GetSize())));
      });
}

}  // namespace

void add_inbound_routes(router& routes, const services& svc, const key_space& keys,
                        const config& cfg, const adapter_auth& auth, metrics_registry& metrics) {
  // Built in place (C++20 aggregate initialization with parentheses): it holds an atomic.
  auto ctx = std::make_shared<inbound_context>(
      svc, keys, cfg, auth, broker::script::make("ingest", std::string(lua::ingest)),
      inbound_limits{static_cast<std::size_t>(cfg.inbound.max_text_bytes)},
      metrics.add_counter("bellhop_inbound_messages_total",
                          "POST /v1/messages/inbound answers by result.", {"result"}));
  routes.add(http::verb::post, "/v1/messages/inbound",
             [ctx](const request& req, responder res) { ingest(ctx, req, std::move(res)); });
  routes.add(http::verb::get, "/v1/messages/{id}",
             [ctx](const request& req, responder res) { message_status(ctx, req, std::move(res)); });
}

}  // namespace bellhop::gateway
