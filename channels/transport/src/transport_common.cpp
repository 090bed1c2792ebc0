#include "transport_common.hpp"

#include <rapidjson/stringbuffer.h>
#include <spdlog/spdlog.h>

#include <set>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/timestamp.hpp"
#include "bellhop/core/inbound_message.hpp"
#include "bellhop/core/redis_full.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using error_code = boost::system::error_code;

// Cuts `v` to at most `max` bytes without splitting a UTF-8 character. Whether it was cut.
bool cut_at_character(std::string& v, std::size_t max) {
  if (v.size() <= max) return false;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;  // continuation
  v.resize(n);
  return true;
}

// A provider's message is stored even where it passes a limit of the canonical message that an
// adapter calling /v1/messages/inbound would be refused for: the provider has no one to tell,
// and a guest's message is never dropped for its length. A text longer than
// inbound.max_text_bytes (an email with its quoted history, say) and a guest name longer than
// the canonical 200 bytes are cut at a character boundary (metadata.text_truncated says so for
// the text); an id longer than the canonical 256 bytes (an email Message-ID may take 998)
// becomes "sha256:" + the hex digest of it, still one dedup key per message, the full id kept
// in the metadata by the adapters that have such ids. A message of a kind without text or
// attachments (a reaction to nothing, an unsupported type) still reaches the engine, saying
// what it was.
void within_limits(channels::guest_message& g, std::size_t max_text_bytes) {
  g.text_truncated = cut_at_character(g.text, max_text_bytes);
  cut_at_character(g.guest_name, max_guest_name_bytes);
  if (g.external_id.size() > max_external_id_bytes)
    g.external_id = "sha256:" + contract::sha256_hex(g.external_id);
  if (g.text.empty() && g.attachment_count == 0) g.text = "(" + g.content_type + ")";
}

}  // namespace

channels::webhook as_webhook(const request& req) {
  channels::webhook w;
  w.method = std::string(req.method_string());
  w.target = std::string(req.target());
  for (const auto& f : req) {
    std::string name(f.name_string());
    for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    w.headers[name] = std::string(f.value());
  }
  w.body = req.body();
  return w;
}

response refused(const request& req, const channels::webhook_result& r) {
  return json_error(req, static_cast<http::status>(r.status), r.error_code, r.error_message,
                    r.error_field);
}

response refused(const ctx_ptr& c, std::string_view channel, std::string_view account,
                 const request& req, const responder& res, const channels::webhook_result& r) {
  if (c->svc.redis)
    c->health->failed(*c->svc.redis, res.executor(), channel, account,
                      account_health::what::webhook, std::to_string(r.status) + " " + r.error_code);
  return refused(req, r);
}

response accepted(const request& req, const channels::webhook_result& r) {
  if (r.reply_body.empty()) return json_response(req, http::status::ok, "{\"status\":\"ok\"}");
  response res{http::status::ok, req.version()};
  res.set(http::field::content_type,
          r.reply_content_type.empty() ? "text/plain" : r.reply_content_type);
  res.keep_alive(req.keep_alive());
  res.body() = r.reply_body;
  res.prepare_payload();
  return res;
}

response starting(const request& req) {
  return service_unavailable(req, "unavailable", "Bellhop is starting; retry later",
                             std::chrono::seconds(1));
}

response not_configured(const ctx_ptr& c, const request& req, std::string_view channel,
                        std::string_view section) {
  c->results.labels({std::string(channel), "not_configured"}).inc();
  return json_error(req, http::status::not_found, "not_configured",
                    std::string(section) + " is not configured on this gateway");
}

void store_all(const ctx_ptr& c, const std::string& channel, const webhook_route& route,
               channels::webhook_result r, const request& req, responder res, bool json_body) {
  struct tally {
    std::size_t pending = 0;
    bool failed = false;
    bool full = false;  // Redis refused a write at maxmemory
    std::string why;
  };
  auto t = std::make_shared<tally>();
  auto result = std::make_shared<channels::webhook_result>(std::move(r));
  auto shell = request_shell(req);
  // The accounts this webhook was for: a stored webhook is a healthy one for each.
  auto routed = std::make_shared<std::set<std::string>>();
  auto finish_one = [c, t, result, res, shell, channel, routed](bool ok, std::string why,
                                                                bool full = false) {
    if (!ok && !t->failed) {
      t->failed = true;
      t->why = std::move(why);
    }
    t->full = t->full || full;
    if (--t->pending > 0) return;
    if (t->full) {  // the provider retries; Redis refused at maxmemory, counted by the broker
      c->results.labels({channel, "redis_full"}).inc();
      return res.send(redis_full(shell));
    }
    if (t->failed) {
      c->results.labels({channel, "unavailable"}).inc();
      return res.send(service_unavailable(shell, "unavailable",
                                          "not stored: " + t->why + "; retry later",
                                          std::chrono::seconds(1)));
    }
    c->results.labels({channel, "accepted"}).inc();
    for (const auto& account : *routed)
      c->health->ok(*c->svc.redis, res.executor(), channel, account, account_health::what::webhook);
    res.send(accepted(shell, *result));
  };

  std::vector<inbound_message> messages;
  const auto now = std::chrono::system_clock::now();
  const inbound_limits limits{c->opts.max_text_bytes};
  std::set<std::string> unknown;  // accounts Bellhop does not know that this webhook is for
  for (auto& g : result->messages) {
    const routed_account* to = route(g.business);
    if (!to) {
      unknown.insert(g.business);
      continue;
    }
    g.account = to->account;
    routed->insert(to->account);
    within_limits(g, limits.max_text_bytes);
    auto m = validate_inbound_message(g, to->property_id, limits, now);
    if (!m) {
      spdlog::warn("webhook {}: message {} dropped: {} ({})", channel, g.external_id,
                   m.error().message, m.error().field);
      continue;
    }
    messages.push_back(std::move(*m));
  }
  // SMS opt-out keywords: STOP marks the guest opted out (later sends fail at once), START
  // lifts it. The message itself still reaches the engine.
  std::vector<broker::command> opt_outs;
  if (channel == "sms") {
    for (const auto& g : result->messages) {
      if (g.opt_out == channels::opt_out_action::stop)
        opt_outs.push_back({"SET", c->keys.opted_out("sms", g.from), contract::format_timestamp(now)});
      else if (g.opt_out == channels::opt_out_action::start)
        opt_outs.push_back({"DEL", c->keys.opted_out("sms", g.from)});
    }
  }
  // A status for a number Bellhop does not know is about a message it did not send.
  std::erase_if(result->statuses, [&](const channels::status_update& s) {
    if (const auto* to = route(s.business)) routed->insert(to->account);
    if (s.business.empty() || route(s.business)) return false;
    unknown.insert(s.business);
    return true;
  });
  const std::string now_text = contract::format_timestamp(now);
  std::vector<std::string> unrouted;
  for (const auto& account : unknown) {
    c->unrouted.labels({channel, "unknown_account"}).inc();
    spdlog::warn("webhook {}: for account '{}', which no property has: kept on {}", channel,
                 account, c->keys.inbound_unrouted());
    rapidjson::StringBuffer b;
    json::writer w(b);
    w.StartObject();
    json::put(w, "channel", channel);
    json::put(w, "reason", "unknown_account");
    json::put(w, "received_at", now_text);
    if (!account.empty()) json::put(w, "account", account);
    w.Key("payload");
    if (json_body) {  // the adapter parsed it: valid JSON
      w.RawValue(req.body().data(), req.body().size(), rapidjson::kObjectType);
    } else {
      json::write_string(w, req.body());
    }
    w.EndObject();
    unrouted.emplace_back(b.GetString(), b.GetSize());
  }
  t->pending = messages.size() + result->statuses.size() + opt_outs.size() + unrouted.size() +
               1;  // +1: this
  for (auto& entry : unrouted) {
    c->svc.redis->post({"LPUSH", c->keys.inbound_unrouted(), std::move(entry)}, res.executor(),
                       [finish_one](error_code ec, broker::reply r) {
                         finish_one(!ec && !r.is_error(), ec ? ec.message() : r.to_string(),
                                    is_redis_full(r));
                       });
  }
  if (!unrouted.empty()) {
    c->svc.redis->post({"LTRIM", c->keys.inbound_unrouted(), "0", std::to_string(unrouted_cap - 1)},
                       res.executor(), [](error_code, broker::reply) {});
  }
  for (auto& cmd : opt_outs) {
    c->svc.redis->post(
        std::move(cmd), res.executor(), [finish_one](error_code ec, broker::reply r) {
          finish_one(!ec && !r.is_error(), ec ? ec.message() : r.to_string(), is_redis_full(r));
        });
  }
  for (auto& m : messages) {
    c->ingest(std::move(m), res.executor(), [finish_one](ingest_outcome out) {
      using o = ingest_outcome::result;
      finish_one(out.what == o::queued || out.what == o::duplicate, out.detail,
                 out.what == o::full);
    });
  }
  for (const auto& s : result->statuses) {
    c->svc.redis->eval(
        c->status, {c->keys.outbound_provider_id(channel, s.provider_message_id)},
        {s.status, c->keys.prefix(), s.timestamp.empty() ? now_text : s.timestamp, s.error_code,
         s.error_reason, std::to_string(c->opts.history_max), s.provider_message_id},
        res.executor(), [finish_one](error_code ec, broker::reply rep) {
          finish_one(!ec && rep.is_array(), ec ? ec.message() : rep.to_string());
        });
  }
  finish_one(true, "");
}

channels::send_result no_answer(const provider_response& r) {
  channels::send_result s;
  s.outcome = channels::send_outcome::transient;
  s.reason = r.error;
  return s;
}

channels::send_result never_sent(std::string reason) {
  channels::send_result s;
  s.outcome = channels::send_outcome::permanent;
  s.reason = std::move(reason);
  return s;
}

const ratelimit::policy* policy(rate_limits* limits, std::string_view name) {
  if (!limits) return nullptr;
  auto it = limits->policies.find(std::string(name));
  return it == limits->policies.end() ? nullptr : &it->second;
}

}  // namespace bellhop::gateway
