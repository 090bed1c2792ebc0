#include "bellhop/inbound/inbound_api.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <mutex>
#include <optional>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/json_response.hpp"
#include "ingest_batcher.hpp"

namespace bellhop::gateway {
namespace {

response unauthorized(const request& req) {
  auto res = json_error(req, http::status::unauthorized, "unauthorized",
                        "missing or unknown adapter key: send Authorization: Bearer <key>");
  res.set(http::field::www_authenticate, "Bearer");
  return res;
}

response unavailable(const request& req, std::string_view why) {
  return service_unavailable(
      req, "unavailable",
      std::string("the message was not stored: ") + std::string(why) + "; retry later",
      std::chrono::seconds(1));
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

struct inbound_context {
  const services& svc;
  const contract::key_space& keys;
  const inbound_options options;
  const adapter_auth& auth;
  inbound_limits limits;
  counter_family& results;
  histogram& batch_sizes;
  // Cells of `results` looked up once (the family lookup takes a lock).
  counter& queued = results.labels({"queued"});
  counter& duplicate = results.labels({"duplicate"});
  counter& unavailable = results.labels({"unavailable"});
  // Made on first use: the broker exists only once Redis has been started.
  std::once_flag batcher_made{};
  std::shared_ptr<ingest_batcher> batcher{};
  // When Redis last refused the ingest script (steady clock, ns): logged at most every 10 s.
  std::atomic<std::int64_t> last_refusal_logged{0};  // 0: never

  // Redis answering with an error (not an outage: the broker reports those) is a data or
  // configuration problem the operator must see, e.g. a foreign key of another type.
  ingest_batcher& ingest() {
    std::call_once(batcher_made, [this] {
      batcher = std::make_shared<ingest_batcher>(
          *svc.redis, keys, options, ingest_batcher::limits{}, batch_sizes, svc.memory.get(),
          svc.limits ? &svc.limits->limiter : nullptr);
    });
    return *batcher;
  }

  // `what` was refused for `why`, with `consequence`.
  void log_refusal(std::string_view what, std::string_view why, std::string_view consequence) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_refusal_logged.load(std::memory_order_relaxed);
    if ((last != 0 && now - last < std::chrono::nanoseconds(std::chrono::seconds(10)).count()) ||
        !last_refusal_logged.compare_exchange_strong(last, now, std::memory_order_relaxed))
      return;
    spdlog::warn("ingest: Redis refused {} ({}); {} (logged at most every 10 s)", what, why,
                 consequence);
  }
};

// Hands a validated message to the ingest script, with its adapter key's rate limit when the
// API has one (decided in the same script call, docs/ratelimit.md), and answers with what
// became of it.
void store(const std::shared_ptr<inbound_context>& ctx, inbound_message msg,
           ingest_batcher::limit limit, responder res, request shell) {
  auto conversation = msg.conversation_id;
  auto executor = res.executor();
  ctx->ingest().submit(
      std::move(msg), std::move(limit), std::move(executor),
      [ctx, res, shell = std::move(shell), conversation = std::move(conversation)](
          ingest_outcome out, std::optional<ratelimit::decision> limit) {
        if (limit && !limit->allowed) {  // nothing of the message was stored
          if (limit->degraded) {
            ctx->unavailable.inc();
            return res.send(
                unavailable(shell, "the rate limit could not be checked (" + limit->error + ")"));
          }
          ctx->results.labels({"rate_limited"}).inc();
          auto r = json_error(shell, http::status::too_many_requests, "rate_limited",
                              "this adapter key is over its rate limit (policy '" +
                                  ctx->svc.limits->inbound_api->name + "'); retry after " +
                                  std::to_string(ceil_seconds(limit->retry_after_ms, 1)) + " s");
          set_ratelimit_headers(r, *limit);
          return res.send(std::move(r));
        }
        // RateLimit-* headers on every answer of a request that was checked.
        auto send = [&](response r) {
          if (limit) set_ratelimit_headers(r, *limit);
          res.send(std::move(r));
        };
        using result = ingest_outcome::result;
        switch (out.what) {
          case result::queued:  // 202 only once Redis has answered: it is in inbound:messages
            if (!out.detail.empty())
              ctx->log_refusal("a step after queueing the message", out.detail,
                               "it is queued and answered 202, but its status record, "
                               "conversation entry or dashboard event may be missing");
            ctx->queued.inc();
            send(json_response(shell, http::status::accepted,
                               "{\"id\":" + json::quote(out.id) +
                                   ",\"status\":\"queued\",\"conversation_id\":" +
                                   json::quote(conversation) + "}"));
            return;
          case result::duplicate:
            ctx->duplicate.inc();
            send(json_response(shell, http::status::ok,
                               "{\"id\":" + json::quote(out.id) + ",\"status\":\"duplicate\"}"));
            return;
          case result::refused:
            ctx->log_refusal("the message", out.detail, "answering 503");
            ctx->unavailable.inc();
            send(unavailable(shell, "Redis refused it"));
            return;
          case result::unavailable:
            ctx->unavailable.inc();
            send(unavailable(shell, out.detail));
            return;
          case result::full:  // logged and counted by the broker
            ctx->results.labels({"redis_full"}).inc();
            send(redis_full(shell));
            return;
        }
      });
}

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

  // Per adapter key, after validation: a bad request costs nothing from the quota.
  ingest_batcher::limit limit;
  if (ctx->svc.limits && ctx->svc.limits->inbound_api)
    limit = {ctx->svc.limits->inbound_api, key->name};
  store(ctx, std::move(msg), std::move(limit), std::move(res), request_shell(req));
}

void message_status(const std::shared_ptr<inbound_context>& ctx, const request& req,
                    responder res) {
  const auto* key = ctx->auth.authenticate(req[http::field::authorization]);
  if (!key) {
    res.send(unauthorized(req));
    return;
  }
  const std::string id(res.param("id"));
  if (id.empty() || id.size() > contract::id_limits::message_id) {
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

inbound_sink add_inbound_routes(router& routes, const services& svc,
                                const contract::key_space& keys, const inbound_options& options,
                                const adapter_auth& auth, metrics_registry& metrics) {
  // Built in place (C++20 aggregate initialization with parentheses): it holds an atomic.
  auto ctx = std::make_shared<inbound_context>(
      svc, keys, options, auth,
      inbound_limits{.max_text_bytes = options.max_text_bytes,
                     .max_body_bytes = options.max_body_bytes},
      metrics.add_counter("bellhop_inbound_messages_total",
                          "POST /v1/messages/inbound answers by result.", {"result"}),
      metrics
          .add_histogram("bellhop_inbound_batch_messages",
                         "Messages per call of the ingest script: messages that arrive while "
                         "earlier calls are in Redis go together.",
                         {}, {1, 2, 4, 8, 16, 32})
          .labels({}));
  routes.add(http::verb::post, "/v1/messages/inbound",
             [ctx](const request& req, responder res) { ingest(ctx, req, std::move(res)); });
  routes.add(http::verb::get, "/v1/messages/{id}",
             [ctx](const request& req, responder res) { message_status(ctx, req, std::move(res)); });
  return [ctx](inbound_message msg, boost::asio::any_io_executor ex,
               std::function<void(ingest_outcome)> done) {
    if (!ctx->svc.redis) {
      ingest_outcome out;
      out.what = ingest_outcome::result::unavailable;
      out.detail = "Bellhop is starting";
      return boost::asio::post(ex, [done = std::move(done), out] { done(out); });
    }
    ctx->ingest().submit(
        std::move(msg), std::move(ex),
        [done = std::move(done)](ingest_outcome out, std::optional<ratelimit::decision>) {
          done(std::move(out));
        });
  };
}

}  // namespace bellhop::gateway
