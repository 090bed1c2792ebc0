#include "bellhop/outbound/outbound_api.hpp"

#include <openssl/crypto.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <memory>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/core/dead_letters.hpp"
#include "bellhop/core/queue_stats.hpp"
#include "bellhop/core/redis_full.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/outbound/lua.hpp"
#include "bellhop/outbound/outbound.hpp"
#include "bellhop/server/admin_auth.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using error_code = boost::system::error_code;

struct outbound_context {
  const services& svc;
  const contract::key_space& keys;
  const outbound_options options;
  const adapter_auth& auth;
  const session_lookup sessions;
  broker::script enqueue =
      broker::script::make("outbound_enqueue", std::string(lua::outbound_enqueue));
  broker::script retry = broker::script::make("outbound_retry_dead",
                                              std::string(lua::outbound_retry_dead));
};
using ctx_ptr = std::shared_ptr<outbound_context>;

response unavailable(const request& req) {
  return service_unavailable(req, "unavailable", "Redis is unavailable; retry later",
                             std::chrono::seconds(1));
}

// Runs `then` for an admin (the token or an admin's session), else answers the refusal.
void as_admin(const ctx_ptr& c, const request& req, responder res,
              std::function<void(responder)> then) {
  authorize_admin(req, std::move(res), c->options.admin_token, c->sessions, std::move(then));
}

void post_outbound(const ctx_ptr& c, const request& req, responder res) {
  const auto* key = c->auth.authenticate(req[http::field::authorization]);
  if (!key) {
    auto r = json_error(req, http::status::unauthorized, "unauthorized",
                        "missing or unknown adapter key: send Authorization: Bearer <key>");
    r.set(http::field::www_authenticate, "Bearer");
    return res.send(std::move(r));
  }
  auto type = req[http::field::content_type];
  if (type.substr(0, type.find(';')) != "application/json")
    return res.send(json_error(req, http::status::unsupported_media_type, "unsupported_media_type",
                               "Content-Type must be application/json"));
  normalized_outbound m;
  if (auto error = normalize_outbound(req.body(), "", m, c->options.max_body_bytes);
      !error.empty()) {
    if (m.refused == "too_large")
      return res.send(json_error(req, http::status::payload_too_large, "payload_too_large", error));
    const bool malformed = m.refused != "invalid";
    return res.send(
        json_error(req, malformed ? http::status::bad_request : http::status::unprocessable_entity,
                   malformed ? "malformed_json" : "invalid_message", error,
                   malformed ? std::string() : m.refused_field));
  }
  // A handoff is a change of the conversation, answered with its state: it has its own route.
  if (m.handoff)
    return res.send(json_error(req, http::status::unprocessable_entity, "invalid_message",
                               "handoff is taken from outbound:<channel> only; over HTTP use "
                               "POST /v1/conversations/{id}/handoff",
                               "handoff"));
  const auto owner = c->options.channels.find(m.msg.channel);
  if (owner == c->options.channels.end()) {
    return res.send(json_error(req, http::status::unprocessable_entity, "unknown_channel",
                               m.msg.channel.empty()
                                   ? "channel is required"
                                   : "channel '" + m.msg.channel + "' is not configured here",
                               "channel"));
  }
  if (!adapter_auth::allows(*key, m.msg.property_id))
    return res.send(json_error(req, http::status::forbidden, "forbidden",
                               "this key may not send for property " + m.msg.property_id,
                               "property_id"));
  // A channel sends for the properties of its accounts only, each from its own: another's
  // would go out from its number or address, under its sender limits (docs/outbound.md).
  if (std::string why;
      !pick_account(m.msg.channel, owner->second, m.msg.property_id, m.msg.account, "", why)) {
    const bool named = !m.msg.account.empty();
    return res.send(json_error(
        req, http::status::unprocessable_entity, named ? "invalid_account" : "property_mismatch",
        named ? "account '" + m.msg.account + "' is not an account of property " +
                    m.msg.property_id + " on channel '" + m.msg.channel + "'"
              : "channel '" + m.msg.channel + "' does not send for property " + m.msg.property_id,
        named ? "account" : "property_id"));
  }
  if (!c->svc.redis) return res.send(unavailable(req));
  if (refuse_new_data(c->svc.memory.get(), *c->svc.redis)) return res.send(redis_full(req));
  const auto& k = c->keys;
  const std::string& id = m.msg.id;
  const bool idempotent = !m.idempotency_key.empty();
  // The element queued is the filed message with its delay: the intake holds it back from when
  // it takes it (the record's digest is of the message without the delay).
  std::string element = m.json;
  if (m.delay_ms > 0) {
    element.pop_back();  // the closing '}' of the object normalize_outbound wrote
    element += ",\"delay_ms\":" + std::to_string(m.delay_ms) + "}";
  }
  c->svc.redis->eval(
      c->enqueue,
      {idempotent ? k.outbound_idempotency(m.msg.property_id, m.idempotency_key) : k.message(id),
       k.outbound(m.msg.channel), k.message(id),
       idempotent ? k.legacy_outbound_idempotency(m.idempotency_key) : k.message(id)},
      {id, element, m.idempotency_key, std::to_string(c->options.idempotency_ttl_s),
       std::to_string(c->options.message_ttl_s), m.msg.property_id, m.msg.channel,
       conversation_of(m.msg), m.created_at, m.msg.to, outbound_digest(m.json), k.message("")},
      res.executor(), [res, shell = request_shell(req)](error_code ec, broker::reply r) {
        const auto& e = r.elements();
        if (is_redis_full(r)) return res.send(redis_full(shell));
        if (ec || !r.is_array() || e.size() != 2 || !e[0].is_integer())
          return res.send(unavailable(shell));
        // The id is another message's (another property's, or not an outbound one): never
        // overwritten, and the answer says no more than that it is taken.
        if (e[0].integer() < 0)
          return res.send(json_error(shell, http::status::conflict, "id_taken",
                                     "this id belongs to another message; omit id to have one "
                                     "given",
                                     "id"));
        const bool queued = e[0].integer() == 1;
        res.send(json_response(shell, queued ? http::status::accepted : http::status::ok,
                               "{\"id\":" + json::quote(e[1].str()) + ",\"status\":\"" +
                                   (queued ? "queued" : "duplicate") + "\"}"));
      });
}

// {channel} of an admin path, when Bellhop sends on it.
bool known_channel(const ctx_ptr& c, const request& req, const responder& res,
                   std::string& channel) {
  channel = std::string(res.param("channel"));
  if (c->options.channels.count(channel)) return true;
  if (channel.size() > contract::id_limits::channel) channel = "(too long)";  // never echoed
  res.send(json_error(req, http::status::not_found, "not_found",
                      "no outbound queue '" + channel + "' (channels: configured ones only)"));
  return false;
}

void queue_stats(const ctx_ptr& c, const request& shell, responder res) {
  if (!c->svc.redis) return res.send(unavailable(shell));
  std::vector<std::string> channels;
  for (const auto& entry : c->options.channels) channels.push_back(entry.first);
  read_queue_stats(
      *c->svc.redis, c->keys, channels, res.executor(),
      [res, shell](std::optional<std::string> queues) {
        if (!queues) return res.send(unavailable(shell));
        res.send(json_response(shell, http::status::ok, "{\"queues\":" + *queues + "}"));
      });
}

// GET /v1/admin/queues/{channel}/dead?limit=N: the newest N dead letters (docs/outbound.md).
void list_dead(const ctx_ptr& c, const request& shell, responder res, std::int64_t limit) {
  std::string ch;
  if (!known_channel(c, shell, res, ch)) return;
  if (!c->svc.redis) return res.send(unavailable(shell));
  read_dead_letters(
      *c->svc.redis, c->keys.outbound_dead(ch), limit, res.executor(),
      [res, shell, ch](std::optional<std::string> dead) {
        if (!dead) return res.send(unavailable(shell));
        res.send(json_response(shell, http::status::ok,
                               "{\"channel\":" + json::quote(ch) + ",\"dead\":" + *dead + "}"));
      });
}

// Pause / resume / purge: one command, answered with a small JSON object.
void simple(const ctx_ptr& c, const request& req, responder res, broker::command cmd,
            std::string field) {
  c->svc.redis->post(std::move(cmd), res.executor(),
                     [res, shell = request_shell(req), field](error_code ec, broker::reply r) {
                       if (ec || r.is_error()) return res.send(unavailable(shell));
                       res.send(json_response(
                           shell, http::status::ok,
                           "{\"" + field + "\":" + std::to_string(r.integer()) + "}"));
                     });
}

void admin_command(const ctx_ptr& c, const request& req, responder res, const char* what) {
  std::string ch;
  if (!known_channel(c, req, res, ch)) return;
  if (!c->svc.redis) return res.send(unavailable(req));
  const auto& k = c->keys;
  const std::string w = what;
  if (w == "pause") return simple(c, req, res, {"SET", k.outbound_paused(ch), "1"}, "paused");
  if (w == "resume") return simple(c, req, res, {"DEL", k.outbound_paused(ch)}, "resumed");
  if (w == "purge") return simple(c, req, res, {"DEL", k.outbound_dead(ch)}, "purged");
  const std::string id = w == "retry_one" ? std::string(res.param("id")) : std::string();
  if (w == "retry_one" && id.size() > contract::id_limits::message_id)
    return res.send(json_error(req, http::status::not_found, "not_found",
                               "no dead letter has an id that long"));
  c->svc.redis->eval(c->retry, {k.outbound_dead(ch), k.outbound(ch)}, {k.message(""), id},
                     res.executor(),
                     [res, shell = request_shell(req), id](error_code ec, broker::reply r) {
                       if (ec || !r.is_integer()) return res.send(unavailable(shell));
                       if (!id.empty() && r.integer() == 0)
                         return res.send(json_error(shell, http::status::not_found, "not_found",
                                                    "no dead letter for message " + id));
                       res.send(json_response(shell, http::status::ok,
                                              "{\"requeued\":" + std::to_string(r.integer()) + "}"));
                     });
}

}  // namespace

void add_outbound_routes(router& routes, const services& svc, const contract::key_space& keys,
                         const outbound_options& options, const adapter_auth& auth,
                         session_lookup sessions) {
  auto c = std::make_shared<outbound_context>(
      outbound_context{svc, keys, options, auth, std::move(sessions)});
  routes.add(http::verb::post, "/v1/messages/outbound",
             [c](const request& req, responder res) { post_outbound(c, req, std::move(res)); });
  routes.add(http::verb::get, "/v1/admin/queues", [c](const request& req, responder res) {
    as_admin(c, req, std::move(res),
             [c, shell = request_shell(req)](responder res) { queue_stats(c, shell, res); });
  });
  routes.add(
      http::verb::get, "/v1/admin/queues/{channel}/dead", [c](const request& req, responder res) {
        auto limit = dead_letters_limit(req.target());
        as_admin(c, req, std::move(res), [c, limit, shell = request_shell(req)](responder res) {
          if (!limit) {
            const auto& e = limit.error();
            return res.send(
                json_error(shell, static_cast<http::status>(e.status), e.code, e.message, e.field));
          }
          list_dead(c, shell, res, *limit);
        });
      });
  // The request is used after a session lookup only through its shell and the path's params.
  auto admin = [&](http::verb v, std::string path, const char* what) {
    routes.add(v, std::move(path), [c, what](const request& req, responder res) {
      as_admin(c, req, std::move(res), [c, what, shell = request_shell(req)](responder res) {
        admin_command(c, shell, std::move(res), what);
      });
    });
  };
  admin(http::verb::post, "/v1/admin/queues/{channel}/pause", "pause");
  admin(http::verb::post, "/v1/admin/queues/{channel}/resume", "resume");
  admin(http::verb::post, "/v1/admin/queues/{channel}/dead/retry", "retry_all");
  admin(http::verb::post, "/v1/admin/queues/{channel}/dead/{id}/retry", "retry_one");
  admin(http::verb::delete_, "/v1/admin/queues/{channel}/dead", "purge");
}

}  // namespace bellhop::gateway
