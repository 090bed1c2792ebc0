#include "bellhop/dashboard/conversation_state_api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>

#include "bellhop/contract/ids.hpp"
#include "bellhop/core/bearer.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/dashboard/conversation_state.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using boost::system::error_code;
using sys_clock = std::chrono::system_clock;

constexpr std::size_t max_reason_bytes = 500;
constexpr std::size_t max_assignee_bytes = 128;
constexpr std::size_t max_body_bytes = 4096;

struct state_context {
  const services& svc;
  const contract::key_space& keys;
  const dashboard_options options;
  const adapter_auth& auth;
  const session_lookup sessions;  // console sessions (server/staff_auth.hpp); null: tokens only
  counter_family& results;
  conversation_writer writer;
};
using ctx_ptr = std::shared_ptr<state_context>;

// Who asks: an AI engine (an adapter key) or a staff member (a staff token or a console
// session).
struct caller {
  const adapter_key* key = nullptr;
  std::optional<staff_principal> staff;
  std::string name;  // the key's name, the token's sub or the console user
  bool allows(std::string_view property) const {
    return key ? adapter_auth::allows(*key, property) : staff->allows(property);
  }
};

// The body of a change: {"reason", "confidence", "assignee"} (all optional but handoff's
// reason), nothing else.
struct change_body {
  std::string reason, confidence, assignee;
};

validation_error invalid(int status, std::string code, std::string message, std::string field) {
  return {status, std::move(code), std::move(message), std::move(field)};
}

boost::system::result<change_body, validation_error> parse_body(std::string_view text,
                                                                std::string_view change) {
  change_body out;
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    if (change == "handoff") return invalid(422, "invalid_field", "reason is required", "reason");
    return out;
  }
  rapidjson::Document d;
  const auto parsed = json::parse(text, d, {.max_bytes = max_body_bytes, .max_depth = 4});
  if (parsed.code == json::error::too_large)
    return invalid(413, "payload_too_large",
                   "the body is larger than " + std::to_string(max_body_bytes) + " bytes", {});
  if (!parsed || !d.IsObject())
    return invalid(400, "malformed_json", "the body must be a JSON object", {});
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    const auto& v = it->value;
    const bool allowed =
        name == "reason" || (change == "handoff" && (name == "confidence" || name == "assignee"));
    if (!allowed)
      return invalid(400, "unknown_field",
                     change == "handoff" ? "unknown field; allowed: reason, confidence, assignee"
                                         : "unknown field; allowed: reason",
                     name.size() <= 64 ? std::string(name) : std::string());
    if (v.IsNull()) continue;
    if (name == "confidence") {
      if (!v.IsNumber())
        return invalid(400, "invalid_field", "confidence must be a number", "confidence");
      const double c = v.GetDouble();
      if (!std::isfinite(c) || c < 0 || c > 1)
        return invalid(422, "out_of_range", "confidence must be between 0 and 1", "confidence");
      char buf[32];
      const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, c);
      out.confidence.assign(buf, ec == std::errc() ? end : buf);
      continue;
    }
    if (!v.IsString())
      return invalid(400, "invalid_field", std::string(name) + " must be a string",
                     std::string(name));
    std::string s(v.GetString(), v.GetStringLength());
    const std::size_t max = name == "reason" ? max_reason_bytes : max_assignee_bytes;
    if (s.size() > max || s.find('\0') != std::string::npos)
      return invalid(422, "invalid_field",
                     std::string(name) + " must be at most " + std::to_string(max) + " bytes",
                     std::string(name));
    (name == "reason" ? out.reason : out.assignee) = std::move(s);
  }
  if (change == "handoff" && out.reason.empty())
    return invalid(422, "invalid_field", "reason is required", "reason");
  return out;
}

response unavailable(const request& req, std::string_view why) {
  return service_unavailable(req, "unavailable", std::string(why), std::chrono::seconds(1));
}

// The conversation's state as the changer answered it, with the seq of its event.
std::string state_body(const contract::conversation_change_result& r) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  w.Key("seq");
  w.Uint64(r.seq);
  w.Key("conversation");
  w.RawValue(r.state_json.data(), r.state_json.size(), rapidjson::kObjectType);
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

void change_authorized(const ctx_ptr& ctx, const request& req, const responder& res,
                       const std::string& change, caller who);

void change_state(const ctx_ptr& ctx, const request& req, responder res, std::string change) {
  caller who;
  if (change != "read") who.key = ctx->auth.authenticate(req[http::field::authorization]);
  if (who.key) {
    who.name = who.key->name;
    return change_authorized(ctx, req, res, change, std::move(who));
  }
  // The request belongs to the connection: what the change reads of it is copied.
  auto detached = request_shell(req);
  if (const auto type = req[http::field::content_type]; !type.empty())
    detached.set(http::field::content_type, type);
  detached.body() = req.body();
  authenticate_staff(
      req, ctx->options.jwt_secret, ctx->sessions, res.executor(),
      [ctx, res, change, req = std::move(detached)](staff_auth_result staff) {
        if (!staff) {
          ctx->results
              .labels({change, staff.error().status == http::status::service_unavailable
                                   ? "unavailable"
                                   : "unauthorized"})
              .inc();
          return res.send(auth_refusal(req, staff.error()));
        }
        caller who;
        who.name = staff->subject;
        who.staff = std::move(*staff);
        change_authorized(ctx, req, res, change, std::move(who));
      });
}

void change_authorized(const ctx_ptr& ctx, const request& req, const responder& res,
                       const std::string& change, caller who) {
  auto count = [ctx, change](std::string_view result) {
    ctx->results.labels({change, result}).inc();
  };
  std::string conversation(res.param("id"));
  if (!contract::is_conversation_id(conversation)) {
    count("invalid");
    return res.send(json_error(req, http::status::unprocessable_entity, "invalid_id",
                               "a conversation id is 'c_' and 32 lowercase hex digits",
                               "conversation_id"));
  }
  auto type = req[http::field::content_type];
  if (!req.body().empty() && type.substr(0, type.find(';')) != "application/json") {
    count("invalid");
    return res.send(json_error(req, http::status::unsupported_media_type, "unsupported_media_type",
                               "Content-Type must be application/json"));
  }
  auto body = parse_body(req.body(), change);
  if (!body) {
    count("invalid");
    const auto& e = body.error();
    return res.send(
        json_error(req, static_cast<http::status>(e.status), e.code, e.message, e.field));
  }
  if (!ctx->svc.redis) {
    count("unavailable");
    return res.send(unavailable(req, "Redis is unavailable (Bellhop is starting); retry later"));
  }
  // The record names the property, which the caller must be allowed; the script checks it
  // again, so a conversation gone in between is 404.
  ctx->svc.redis->post(
      {"HGET", ctx->keys.conversation(conversation), "property_id"}, res.executor(),
      [ctx, res, shell = request_shell(req), who = std::move(who), conversation,
       body = std::move(*body), change, count](error_code ec, broker::reply r) mutable {
        if (ec || r.is_error()) {
          count("unavailable");
          return res.send(unavailable(shell, "Redis is unavailable; retry later"));
        }
        if (!r.is_string() || !contract::is_property_id(r.str())) {
          count("not_found");
          return res.send(json_error(shell, http::status::not_found, "not_found",
                                     "no such conversation", "conversation_id"));
        }
        const std::string property = r.str();
        if (!who.allows(property)) {
          count("forbidden");
          return res.send(json_error(shell, http::status::forbidden, "forbidden",
                                     "this credential does not cover the conversation's property",
                                     "property_id"));
        }
        contract::conversation_change c{property,    conversation,    change,       who.name,
                                        body.reason, body.confidence, body.assignee};
        // Staff taking a conversation over take it themselves unless they name someone.
        if (change == "handoff" && who.staff && c.assignee.empty()) c.assignee = who.name;
        ctx->writer.change(
            std::move(c), res.executor(),
            [ctx, res, shell, count](contract::conversation_change_result out) {
              if (out.error_code == "not_found") {
                count("not_found");
                return res.send(json_error(shell, http::status::not_found, "not_found",
                                           "no such conversation", "conversation_id"));
              }
              if (out.error_code == "redis_full") {
                count("unavailable");
                return res.send(redis_full(shell));
              }
              if (!out.error_code.empty()) {
                count("unavailable");
                return res.send(unavailable(shell, out.error_message));
              }
              count("ok");
              res.send(json_response(shell, http::status::ok, state_body(out)));
            });
      });
}

}  // namespace

void add_conversation_state_routes(router& routes, const services& svc,
                                   const contract::key_space& keys,
                                   const dashboard_options& options, const adapter_auth& auth,
                                   const session_lookup& sessions, metrics_registry& metrics) {
  auto ctx = std::make_shared<state_context>(state_context{
      svc, keys, options, auth, sessions,
      metrics.add_counter("bellhop_conversation_changes_total",
                          "Conversation state changes over REST (handoff, release, read) by "
                          "result.",
                          {"change", "result"}),
      conversation_writer(svc, keys, options)});
  for (const char* change : {"handoff", "release", "read"}) {
    routes.add(http::verb::post, std::string("/v1/conversations/{id}/") + change,
               [ctx, change](const request& req, responder res) {
                 change_state(ctx, req, std::move(res), change);
               });
  }
}

}  // namespace bellhop::gateway
