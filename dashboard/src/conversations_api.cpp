#include "bellhop/dashboard/conversations_api.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <optional>

#include "bellhop/contract/ids.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/dashboard/lua.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using contract::is_conversation_id;
using contract::is_property_id;

using boost::system::error_code;
using sys_clock = std::chrono::system_clock;
using json::writer;

constexpr std::int64_t default_limit = 50;
constexpr std::int64_t max_limit = 200;
// Index scores are doubles: whole numbers up to 2^53 are exact.
constexpr std::int64_t max_before_ms = std::int64_t{1} << 53;
// Values of the metric's `endpoint` label.
constexpr std::string_view list_endpoint = "conversations";
constexpr std::string_view messages_endpoint = "messages";
constexpr std::string_view presence_endpoint = "presence";

struct conversations_context {
  const services& svc;
  const contract::key_space& keys;
  const dashboard_options options;
  const session_lookup sessions;  // console sessions (server/staff_auth.hpp); null: tokens only
  counter_family& results;
  counter_family& poison;
  broker::script list =
      broker::script::make("list_conversations", std::string(lua::list_conversations));
  broker::script messages =
      broker::script::make("conversation_messages", std::string(lua::conversation_messages));
  broker::script presence = broker::script::make("presence", std::string(lua::presence));

  void count(std::string_view endpoint, std::string_view result) {
    results.labels({endpoint, result}).inc();
  }
};

struct page_query {
  std::int64_t limit = default_limit;
  std::optional<std::int64_t> before;
};

using json::put;
using json::put_or_null;

// Echoed back as `field` only when it is short printable ASCII (the body must stay valid JSON).
std::string field_name(std::string_view key) {
  const bool printable = key.size() <= 64 && std::all_of(key.begin(), key.end(), [](char c) {
                           return c > 0x20 && c < 0x7f;
                         });
  return printable ? std::string(key) : std::string();
}

validation_error invalid(int status, std::string code, std::string message, std::string field) {
  return {status, std::move(code), std::move(message), std::move(field)};
}

// A whole number in [min, max]: 400 when it is not a number at all, 422 when out of range.
boost::system::result<std::int64_t, validation_error> parse_whole(const std::string& name,
                                                                  std::string_view text,
                                                                  std::int64_t min,
                                                                  std::int64_t max) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool whole = !text.empty() && end == text.data() + text.size();
  const std::string range =
      name + " must be between " + std::to_string(min) + " and " + std::to_string(max);
  if (ec == std::errc::result_out_of_range && whole)
    return invalid(422, "out_of_range", range, name);
  if (ec != std::errc() || !whole)
    return invalid(400, "invalid_parameter", name + " must be a whole number", name);
  if (value < min || value > max) return invalid(422, "out_of_range", range, name);
  // (validation_error is an aggregate starting with an int: name the alternative.)
  return {boost::system::in_place_value, value};
}

// `limit` (both endpoints) and `before` (the conversation list). Unknown parameters are
// refused like unknown body fields: a typo must not silently change the answer.
boost::system::result<page_query, validation_error> parse_query(std::string_view target,
                                                                bool with_before) {
  const auto url = boost::urls::parse_origin_form(target);
  if (!url) return invalid(400, "malformed_query", "the query string is not valid", {});
  page_query q;
  bool seen_limit = false, seen_before = false;
  for (const auto& p : url->params()) {
    if (p.key.empty() && !p.has_value) continue;  // "?" or "?a=1&&b=2"
    bool* seen = nullptr;
    if (p.key == "limit") {
      seen = &seen_limit;
    } else if (with_before && p.key == "before") {
      seen = &seen_before;
    } else {
      return invalid(
          400, "unknown_parameter",
          "unknown query parameter; allowed: limit" + std::string(with_before ? ", before" : ""),
          field_name(p.key));
    }
    if (*seen) return invalid(400, "invalid_parameter", p.key + " is given twice", p.key);
    *seen = true;
    auto value = p.key == "limit" ? parse_whole(p.key, p.value, 1, max_limit)
                                  : parse_whole(p.key, p.value, 1, max_before_ms);
    if (!value) return value.error();
    if (p.key == "limit")
      q.limit = *value;
    else
      q.before = *value;
  }
  return q;
}

response unavailable(const request& req, std::string_view why) {
  return service_unavailable(req, "unavailable",
                             "Redis is unavailable (" + std::string(why) + "); retry later",
                             std::chrono::seconds(1));
}

response refused(const request& req, const validation_error& e) {
  return json_error(req, static_cast<http::status>(e.status), e.code, e.message, e.field);
}

response no_such_conversation(const request& req) {
  return json_error(req, http::status::not_found, "not_found", "no such conversation",
                    "conversation_id");
}

// Scores come back as Redis formats doubles ("1732269600000", or with an exponent).
std::optional<std::int64_t> score_ms(std::string_view s) {
  double d = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d) ||
      std::abs(d) > static_cast<double>(max_before_ms))
    return std::nullopt;
  return static_cast<std::int64_t>(std::llround(d));
}

// A whole number a script stored in a record field, or nullopt (absent or not one).
std::optional<std::int64_t> whole(std::string_view s) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// Stored messages are read through the bounded parser: at most 1 MiB and 32 levels (ingest
// writes envelopes of at most inbound.max_depth levels, far smaller).
constexpr json::limits stored_limits{.max_bytes = 1 << 20, .max_depth = 32};

// Why a stored message cannot be embedded as is ("" when it is one JSON object and nothing
// else), as the poison metric names it.
std::string_view unusable_message(const std::string& s) {
  // RapidJSON reads a NUL as the end of input: text after one would be embedded unchecked.
  if (s.find('\0') != std::string::npos) return "syntax";
  rapidjson::Document d;
  const auto parsed = json::parse(s, d, stored_limits);
  if (parsed && d.IsObject()) return {};
  return poison_reason(parsed);
}

// The id of a stored message (JSON), or "" if it has none.
std::string message_id(const broker::reply& message) {
  if (!message.is_string()) return {};
  rapidjson::Document d;
  if (!json::parse(message.str(), d, stored_limits) || !d.IsObject()) return {};
  const auto id = d.FindMember("id");
  if (id == d.MemberEnd() || !id->value.IsString()) return {};
  return {id->value.GetString(), id->value.GetStringLength()};
}

// The list script's reply: {next_before, unread total, member, score, {HGETALL…}, last
// message, …}. The last
// activity is the index score (the time of the last message); the last message is the head of
// the conversation's recent messages.
std::string conversations_body(std::string_view property, const std::vector<broker::reply>& el) {
  rapidjson::StringBuffer out;
  writer w(out);
  w.StartObject();
  put(w, "property_id", property);
  w.Key("unread");
  w.Int64(el.size() > 1 && el[1].is_integer() ? el[1].integer() : 0);
  w.Key("conversations");
  w.StartArray();
  for (std::size_t i = 2; i + 3 < el.size(); i += 4) {
    const auto& member = el[i];
    const auto ms = score_ms(el[i + 1].str());
    const auto& record = el[i + 2].elements();
    if (!member.is_string() || !ms || !el[i + 2].is_array()) continue;
    auto field = [&record](std::string_view name) -> std::string_view {
      for (std::size_t f = 0; f + 1 < record.size(); f += 2)
        if (record[f].str() == name) return record[f + 1].str();
      return {};
    };
    // An index entry never points to another property's conversation; if one did, its
    // record must not leak.
    if (field("property_id") != property) continue;
    w.StartObject();
    put(w, "conversation_id", member.str());
    put(w, "channel", field("channel"));
    put(w, "guest", field("guest"));
    put_or_null(w, "guest_name", field("guest_name"));
    put(w, "last_message_at",
        contract::format_timestamp(sys_clock::time_point(std::chrono::milliseconds(*ms))));
    put_or_null(w, "last_message_id", message_id(el[i + 3]));
    w.Key("last_activity_ms");
    w.Int64(*ms);
    // Conversation state (docs/properties.md): absent fields are the defaults.
    put(w, "mode", field("mode") == "human" ? "human" : "ai");
    put_or_null(w, "assignee", field("assignee"));
    w.Key("unread");
    w.Int64(whole(field("unread")).value_or(0));
    w.Key("last_inbound_at");
    if (const auto at = whole(field("last_inbound_at")))
      w.Int64(*at);
    else
      w.Null();
    w.Key("read_at");
    if (const auto at = whole(field("read_at")))
      w.Int64(*at);
    else
      w.Null();
    w.EndObject();
  }
  w.EndArray();
  w.Key("next_before");
  if (const auto next = score_ms(el[0].str()))
    w.Int64(*next);
  else
    w.Null();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

// The newest `keep` valid envelopes of `stored` (newest first), oldest first. The list may hold
// up to half again the cap before ingest trims it: `keep` is the cap.
// Unusable ones are skipped, counted in `poison` and logged (at most one line per conversation
// read).
// Short printable ASCII read back from a status record, or nullopt: what goes into the answer
// as is (a record is written by Bellhop's scripts, but Redis is not trusted).
std::optional<std::string_view> printable(const broker::reply& r, std::size_t max) {
  if (!r.is_string() || r.str().size() > max) return std::nullopt;
  const auto& s = r.str();
  if (!std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
    return std::nullopt;
  return std::string_view(s);
}

// `message` (a JSON object) with "delivery":{"status","reason"} as its first member, when the
// script found the outbound message's record ({status, reason}); nullopt when it adds nothing.
std::optional<std::string> with_delivery(std::string_view message, const broker::reply* status) {
  if (!status || !status->is_array() || status->elements().size() != 2) return std::nullopt;
  const auto s = printable(status->elements()[0], 32);
  const auto reason = printable(status->elements()[1], 200);
  const auto brace = message.find('{');
  if (!s || s->empty() || brace == std::string_view::npos) return std::nullopt;
  rapidjson::StringBuffer out;
  writer w(out);
  w.StartObject();
  put(w, "status", *s);
  w.Key("reason");
  if (reason && !reason->empty())
    w.String(reason->data(), static_cast<rapidjson::SizeType>(reason->size()));
  else
    w.Null();
  w.EndObject();
  auto rest = message.substr(brace + 1);
  const auto next = rest.find_first_not_of(" \t\r\n");
  const bool empty = next != std::string_view::npos && rest[next] == '}';
  std::string merged = "{\"delivery\":";
  merged.append(out.GetString(), out.GetSize());
  if (!empty) merged += ',';
  merged.append(rest);
  return merged;
}

std::string messages_body(std::string_view conversation, std::string_view property,
                          const std::vector<broker::reply>& stored,
                          const std::vector<broker::reply>* statuses,
                          const std::vector<broker::reply>* held, std::size_t keep,
                          counter_family& poison) {
  rapidjson::StringBuffer out;
  writer w(out);
  w.StartObject();
  put(w, "conversation_id", conversation);
  put(w, "property_id", property);
  w.Key("messages");
  w.StartArray();
  std::vector<std::pair<const std::string*, const broker::reply*>> valid;
  std::size_t skipped = 0;
  for (std::size_t i = 0; i < stored.size(); ++i) {
    const auto& e = stored[i];
    if (valid.size() == keep) break;
    if (!e.is_string()) continue;
    if (const auto why = unusable_message(e.str()); why.empty()) {
      valid.emplace_back(&e.str(), statuses && i < statuses->size() ? &(*statuses)[i] : nullptr);
    } else if (skipped++ == 0) {
      report_poison(poison, "conversation_messages", conversation, why,
                    "a stored message is not a JSON object; skipped");
    } else {
      poison.labels({"conversation_messages", why}).inc();
    }
  }
  for (auto it = valid.rbegin(); it != valid.rend(); ++it) {
    const auto merged = with_delivery(*it->first, it->second);
    const std::string& message = merged ? *merged : *it->first;
    w.RawValue(message.data(), message.size(), rapidjson::kObjectType);
  }
  w.EndArray();
  // The AI's held suggestions (message.status data), oldest first; what is not one JSON object
  // is left out like a message.
  w.Key("held");
  w.StartArray();
  if (held) {
    for (auto it = held->rbegin(); it != held->rend(); ++it) {
      if (!it->is_string()) continue;
      if (const auto why = unusable_message(it->str()); !why.empty()) {
        poison.labels({"conversation_messages", why}).inc();
        continue;
      }
      w.RawValue(it->str().data(), it->str().size(), rapidjson::kObjectType);
    }
  }
  w.EndArray();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

// The caller (a staff token or a console session) and the request's {id} property, checked
// against each other; `next` runs on the responder's executor with both, or the refusal (401,
// 403, 422, 503) is sent.
using authorized_next = std::function<void(staff_principal, std::string property)>;
void authorize_property(const std::shared_ptr<conversations_context>& ctx, const request& req,
                        const responder& res, std::string_view endpoint, authorized_next next) {
  authenticate_staff(
      req, ctx->options.jwt_secret, ctx->sessions, res.executor(),
      [ctx, res, shell = request_shell(req), endpoint,
       next = std::move(next)](staff_auth_result who) {
        if (!who) {
          ctx->count(endpoint, who.error().status == http::status::service_unavailable
                                   ? "unavailable"
                                   : "unauthorized");
          return res.send(auth_refusal(shell, who.error()));
        }
        std::string property(res.param("id"));
        if (!is_property_id(property)) {
          ctx->count(endpoint, "invalid");
          return res.send(json_error(shell, http::status::unprocessable_entity, "invalid_id",
                                     "a property id is 1-64 letters, digits, '-', '_' or '.'",
                                     "property_id"));
        }
        if (!who->allows(property)) {
          ctx->count(endpoint, "forbidden");
          return res.send(json_error(shell, http::status::forbidden, "forbidden",
                                     "this credential does not cover property '" + property + "'",
                                     "property_id"));
        }
        next(std::move(*who), std::move(property));
      });
}

// What a handler reads of the request once its caller is known (the request itself belongs to
// the connection): version, keep-alive and the target.
request detached(const request& req) {
  auto out = request_shell(req);
  out.target(req.target());
  return out;
}

void list_authorized(const std::shared_ptr<conversations_context>& ctx, const request& req,
                     const responder& res, const std::string& property) {
  const auto query = parse_query(req.target(), true);
  if (!query) {
    ctx->count(list_endpoint, "invalid");
    res.send(refused(req, query.error()));
    return;
  }
  if (!ctx->svc.redis) {
    ctx->count(list_endpoint, "unavailable");
    res.send(unavailable(req, "Bellhop is starting"));
    return;
  }
  // Index entries older than the records' TTL point to expired records.
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(sys_clock::now().time_since_epoch())
          .count();
  const auto cutoff = now_ms - std::int64_t{ctx->options.conversation_ttl_s} * 1000;
  std::vector<std::string> args = {ctx->keys.conversation(""), std::to_string(cutoff),
                                   query->before ? "(" + std::to_string(*query->before) : "+inf",
                                   std::to_string(query->limit)};
  ctx->svc.redis->eval(
      ctx->list,
      {ctx->keys.property_conversations_index(property), ctx->keys.property_unread(property)},
      std::move(args), res.executor(),
      [ctx, res, shell = request_shell(req), property](error_code ec, broker::reply r) {
        if (ec || !r.is_array() || r.elements().empty() || !r.elements()[0].is_string()) {
          ctx->count(list_endpoint, "unavailable");
          res.send(unavailable(shell, ec ? ec.message() : "unexpected reply"));
          return;
        }
        ctx->count(list_endpoint, "ok");
        res.send(
            json_response(shell, http::status::ok, conversations_body(property, r.elements())));
      });
}

void list_conversations(const std::shared_ptr<conversations_context>& ctx, const request& req,
                        responder res) {
  authorize_property(ctx, req, res, list_endpoint,
                     [ctx, res, req = detached(req)](staff_principal, std::string property) {
                       list_authorized(ctx, req, res, property);
                     });
}

void messages_authorized(const std::shared_ptr<conversations_context>& ctx, const request& req,
                         const responder& res, staff_principal staff) {
  const std::string conversation(res.param("id"));
  if (!is_conversation_id(conversation)) {
    ctx->count(messages_endpoint, "invalid");
    res.send(json_error(req, http::status::unprocessable_entity, "invalid_id",
                        "a conversation id is 'c_' and 32 lowercase hex digits",
                        "conversation_id"));
    return;
  }
  const auto query = parse_query(req.target(), false);
  if (!query) {
    ctx->count(messages_endpoint, "invalid");
    res.send(refused(req, query.error()));
    return;
  }
  if (!ctx->svc.redis) {
    ctx->count(messages_endpoint, "unavailable");
    res.send(unavailable(req, "Bellhop is starting"));
    return;
  }
  ctx->svc.redis->eval(
      ctx->messages,
      {ctx->keys.conversation(conversation), ctx->keys.conversation_messages(conversation),
       ctx->keys.conversation_held(conversation)},
      {std::to_string(query->limit), ctx->keys.message("")}, res.executor(),
      [ctx, res, shell = request_shell(req), conversation, staff = std::move(staff)](
          error_code ec, broker::reply r) {
        if (ec || !r.is_array()) {
          ctx->count(messages_endpoint, "unavailable");
          res.send(unavailable(shell, ec ? ec.message() : "unexpected reply"));
          return;
        }
        const auto& el = r.elements();
        // Another property's conversation answers exactly like an unknown one.
        if (el.empty() || !el[0].is_string() || !staff.allows(el[0].str())) {
          ctx->count(messages_endpoint, "not_found");
          res.send(no_such_conversation(shell));
          return;
        }
        if (el.size() < 2 || !el[1].is_array()) {
          ctx->count(messages_endpoint, "unavailable");
          res.send(unavailable(shell, "unexpected reply"));
          return;
        }
        ctx->count(messages_endpoint, "ok");
        res.send(json_response(
            shell, http::status::ok,
            messages_body(conversation, el[0].str(), el[1].elements(),
                          el.size() > 2 && el[2].is_array() ? &el[2].elements() : nullptr,
                          el.size() > 3 && el[3].is_array() ? &el[3].elements() : nullptr,
                          static_cast<std::size_t>(ctx->options.recent_messages), ctx->poison)));
      });
}

void conversation_messages(const std::shared_ptr<conversations_context>& ctx, const request& req,
                           responder res) {
  authenticate_staff(req, ctx->options.jwt_secret, ctx->sessions, res.executor(),
                     [ctx, res, req = detached(req)](staff_auth_result who) {
                       if (!who) {
                         ctx->count(messages_endpoint,
                                    who.error().status == http::status::service_unavailable
                                        ? "unavailable"
                                        : "unauthorized");
                         return res.send(auth_refusal(req, who.error()));
                       }
                       messages_authorized(ctx, req, res, std::move(*who));
                     });
}

// GET /v1/properties/{id}/presence: the staff sessions watching the property, by sub.
void presence_authorized(const std::shared_ptr<conversations_context>& ctx, const request& req,
                         const responder& res, const std::string& property) {
  if (!ctx->svc.redis) {
    ctx->count(presence_endpoint, "unavailable");
    res.send(unavailable(req, "Bellhop is starting"));
    return;
  }
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(sys_clock::now().time_since_epoch())
          .count();
  ctx->svc.redis->eval(
      ctx->presence, {ctx->keys.property_presence(property)},
      {std::to_string(now_ms), ctx->keys.session("")}, res.executor(),
      [ctx, res, shell = request_shell(req), property](error_code ec, broker::reply r) {
        if (ec || !r.is_array()) {
          ctx->count(presence_endpoint, "unavailable");
          res.send(unavailable(shell, ec ? ec.message() : "unexpected reply"));
          return;
        }
        // Sessions grouped by sub, in the order subs first appear.
        std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> staff;
        const auto& e = r.elements();
        for (std::size_t i = 0; i + 2 < e.size(); i += 3) {
          auto it = std::find_if(staff.begin(), staff.end(),
                                 [&](const auto& s) { return s.first == e[i + 1].str(); });
          if (it == staff.end()) it = staff.insert(staff.end(), {e[i + 1].str(), {}});
          it->second.emplace_back(e[i].str(), e[i + 2].str());
        }
        rapidjson::StringBuffer out;
        writer w(out);
        w.StartObject();
        put(w, "property_id", property);
        w.Key("staff");
        w.StartArray();
        for (const auto& [sub, sessions] : staff) {
          w.StartObject();
          put(w, "sub", sub);
          w.Key("sessions");
          w.StartArray();
          for (const auto& [id, connected_at] : sessions) {
            w.StartObject();
            put(w, "session_id", id);
            put(w, "connected_at", connected_at);
            w.EndObject();
          }
          w.EndArray();
          w.EndObject();
        }
        w.EndArray();
        w.EndObject();
        ctx->count(presence_endpoint, "ok");
        res.send(json_response(shell, http::status::ok, {out.GetString(), out.GetSize()}));
      });
}

void presence(const std::shared_ptr<conversations_context>& ctx, const request& req,
              responder res) {
  authorize_property(ctx, req, res, presence_endpoint,
                     [ctx, res, req = detached(req)](staff_principal, std::string property) {
                       presence_authorized(ctx, req, res, property);
                     });
}

}  // namespace

void add_conversation_routes(router& routes, const services& svc, const contract::key_space& keys,
                             const dashboard_options& options, const session_lookup& sessions,
                             metrics_registry& metrics) {
  auto ctx = std::make_shared<conversations_context>(conversations_context{
      svc, keys, options, sessions,
      metrics.add_counter("bellhop_conversations_api_requests_total",
                          "Dashboard state reads (conversation list, recent messages) by result.",
                          {"endpoint", "result"}),
      poison_metric(metrics)});
  routes.add(
      http::verb::get, "/v1/properties/{id}/conversations",
      [ctx](const request& req, responder res) { list_conversations(ctx, req, std::move(res)); });
  routes.add(http::verb::get, "/v1/properties/{id}/presence",
             [ctx](const request& req, responder res) { presence(ctx, req, std::move(res)); });
  routes.add(http::verb::get, "/v1/conversations/{id}/messages",
             [ctx](const request& req, responder res) {
               conversation_messages(ctx, req, std::move(res));
             });
}

}  // namespace bellhop::gateway
