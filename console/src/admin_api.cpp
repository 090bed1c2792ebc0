#include "bellhop/console/admin_api.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>
#include <memory>
#include <optional>

#include "bellhop/console/lua.hpp"
#include "bellhop/core/account_health.hpp"
#include "bellhop/core/dead_letters.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/core/queue_stats.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/admin_auth.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using error_code = boost::system::error_code;
using sys_clock = std::chrono::system_clock;

// The overview lists at most this many AI engines (the consumers by name).
constexpr std::int64_t max_engines = 100;
// The chart's minutes: the last hour, the current minute last.
constexpr std::int64_t chart_minutes = 60;
// What of a name read back from Redis (a consumer's) is shown.
constexpr std::size_t max_name_bytes = 256;

struct admin_context {
  const services& svc;
  const contract::key_space& keys;
  const console_options options;
  const session_lookup sessions;
  broker::script overview =
      broker::script::make("admin_overview", std::string(lua::admin_overview));
  broker::script retry =
      broker::script::make("inbound_retry_dead", std::string(lua::inbound_retry_dead));
};
using ctx_ptr = std::shared_ptr<admin_context>;

response unavailable(const request& req) {
  return service_unavailable(req, "unavailable", "Redis is unavailable; retry later",
                             std::chrono::seconds(1));
}

std::int64_t epoch_ms(sys_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// A whole number of a Redis string (a hash field, an INFO value); nullopt when it is not one.
std::optional<std::int64_t> whole(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

void put_whole_or_null(json::writer& w, std::string_view key, std::optional<std::int64_t> v) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
  if (v)
    w.Int64(*v);
  else
    w.Null();
}

// `field:value` lines of INFO replies.
std::map<std::string, std::string, std::less<>> info_fields(const std::string& text) {
  std::map<std::string, std::string, std::less<>> out;
  std::size_t at = 0;
  while (at < text.size() && out.size() < 1000) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto colon = line.find(':');
    if (!line.empty() && line[0] != '#' && colon != std::string_view::npos)
      out.emplace(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
    at = end + 1;
  }
  return out;
}

// What one overview request gathers: its pieces arrive in any order, on the responder's strand.
struct overview_parts {
  std::size_t pending = 3;  // the script, the queue figures, INFO
  bool failed = false;
  broker::reply inbound;
  std::string queues;
  std::string info;
  std::int64_t now_ms = 0;
  std::int64_t first_minute = 0;  // epoch minute of the chart's first entry
};

void write_inbound(json::writer& w, const broker::reply& r, int visibility_timeout_ms) {
  const auto& e = r.elements();
  w.Key("inbound");
  w.StartObject();
  const char* names[] = {"waiting", "dead", "unrouted"};
  for (std::size_t i = 0; i < 3; ++i) {
    w.Key(names[i]);
    w.Int64(e[i].integer());
  }
  w.Key("engines_total");
  w.Int64(e[3].integer());
  w.Key("engines");
  w.StartArray();
  const auto& engines = e[4].elements();
  for (std::size_t i = 0; i + 2 < engines.size(); i += 3) {
    const auto& name = engines[i];
    if (!name.is_string() || !engines[i + 1].is_integer() || !engines[i + 2].is_integer()) continue;
    const std::int64_t pttl = engines[i + 2].integer();
    w.StartObject();
    json::put(w, "consumer", valid_utf8(std::string_view(name.str()).substr(0, max_name_bytes)));
    w.Key("in_flight");
    w.Int64(engines[i + 1].integer());
    // The engine renews its heartbeat with inbound.visibility_timeout_ms each time: what has
    // run down of it is how long ago that was.
    w.Key("heartbeat_age_ms");
    if (pttl >= 0)
      w.Int64(std::max<std::int64_t>(0, visibility_timeout_ms - pttl));
    else
      w.Null();
    w.Key("alive");
    w.Bool(pttl != -2);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void write_throughput(json::writer& w, const broker::reply& r, std::int64_t first_minute) {
  const auto& counts = r.elements()[5].elements();
  w.Key("throughput");
  w.StartArray();
  for (std::int64_t i = 0; i < chart_minutes; ++i) {
    w.StartObject();
    w.Key("minute");
    w.Int64((first_minute + i) * 60000);
    const auto at = static_cast<std::size_t>(2 * i);
    for (std::size_t j = 0; j < 2; ++j) {
      w.Key(j == 0 ? "in" : "out");
      std::int64_t n = 0;
      if (at + j < counts.size() && counts[at + j].is_string())
        n = whole(counts[at + j].str()).value_or(0);
      w.Int64(n);
    }
    w.EndObject();
  }
  w.EndArray();
}

void write_health(json::writer& w, const char* key, const std::map<std::string, std::string>& h,
                  const std::string& account, account_health::what what) {
  auto get = [&](std::string_view suffix) -> const std::string* {
    auto it = h.find(account_health::field(account, what, suffix));
    return it == h.end() ? nullptr : &it->second;
  };
  w.Key(key);
  w.StartObject();
  const auto* ok = get("ok_at");
  const auto* error_at = get("error_at");
  const auto* error = get("error");
  put_whole_or_null(w, "ok_at", ok ? whole(*ok) : std::nullopt);
  put_whole_or_null(w, "error_at", error_at ? whole(*error_at) : std::nullopt);
  w.Key("error");
  if (error)
    json::write_string(
        w, valid_utf8(std::string_view(*error).substr(0, account_health::max_error_bytes)));
  else
    w.Null();
  w.EndObject();
}

void write_accounts(json::writer& w, const console_options& o, const broker::reply& r) {
  const auto& hashes = r.elements()[6].elements();
  w.Key("accounts");
  w.StartArray();
  std::size_t index = 0;
  for (const auto& [channel, accounts] : o.accounts) {
    std::map<std::string, std::string> h;
    if (index < hashes.size()) {
      const auto& kv = hashes[index].elements();
      // A hash written by Bellhop holds 6 fields per account; anything far beyond is ignored.
      for (std::size_t i = 0; i + 1 < kv.size() && i < 12 * accounts.size() + 12; i += 2)
        h.emplace(kv[i].str(), kv[i + 1].str());
    }
    ++index;
    for (const auto& a : accounts) {
      w.StartObject();
      json::put(w, "channel", channel);
      json::put(w, "account", a.id);
      json::put(w, "property_id", a.property_id);
      write_health(w, "webhook", h, a.id, account_health::what::webhook);
      write_health(w, "send", h, a.id, account_health::what::send);
      w.EndObject();
    }
  }
  w.EndArray();
}

void write_rate_limits(json::writer& w, const rate_limits* limits) {
  w.Key("rate_limits");
  w.StartArray();
  if (limits) {
    for (const auto& [name, p] : limits->policies) {
      w.StartObject();
      json::put(w, "name", name);
      json::put(w, "algorithm", ratelimit::to_string(p.algorithm));
      w.Key("limit");
      w.Int64(p.limit);
      w.Key("window_s");
      if (p.window_ms % 1000 == 0)
        w.Int64(p.window_ms / 1000);
      else
        w.Double(static_cast<double>(p.window_ms) / 1000.0);
      w.Key("burst");
      w.Int64(p.burst);
      json::put(w, "fail", p.fail == ratelimit::failure_mode::open ? "open" : "closed");
      w.EndObject();
    }
  }
  w.EndArray();
}

void write_redis(json::writer& w, const services& svc, const std::string& info) {
  const auto f = info_fields(info);
  auto field = [&](std::string_view name) -> std::optional<std::int64_t> {
    auto it = f.find(name);
    return it == f.end() ? std::nullopt : whole(it->second);
  };
  w.Key("redis");
  w.StartObject();
  w.Key("embedded");
  w.Bool(svc.embedded != nullptr);
  put_whole_or_null(w, "used_memory", field("used_memory"));
  put_whole_or_null(w, "maxmemory", field("maxmemory"));
  w.Key("aof_enabled");
  w.Bool(field("aof_enabled").value_or(0) == 1);
  const auto saved = field("rdb_last_save_time");
  put_whole_or_null(w, "rdb_last_save_at", saved ? std::optional(*saved * 1000) : std::nullopt);
  w.Key("rdb_last_bgsave_status");
  if (auto it = f.find("rdb_last_bgsave_status"); it != f.end())
    json::write_string(w, valid_utf8(std::string_view(it->second).substr(0, 32)));
  else
    w.Null();
  w.Key("restarts");
  w.Uint64(svc.embedded ? svc.embedded->stats().restarts : 0);
  put_whole_or_null(w, "uptime_s", field("uptime_in_seconds"));
  w.EndObject();
}

bool well_formed_overview(const broker::reply& r) {
  if (!r.is_array() || r.elements().size() != 7) return false;
  const auto& e = r.elements();
  for (std::size_t i = 0; i < 4; ++i)
    if (!e[i].is_integer()) return false;
  return e[4].is_array() && e[5].is_array() && e[6].is_array();
}

void answer_overview(const ctx_ptr& c, const request& shell, const responder& res,
                     const overview_parts& p) {
  if (p.failed || !well_formed_overview(p.inbound)) return res.send(unavailable(shell));
  rapidjson::StringBuffer b;
  json::writer w(b);
  w.StartObject();
  w.Key("generated_at");
  w.Int64(p.now_ms);
  write_inbound(w, p.inbound, c->options.inbound_visibility_timeout_ms);
  w.Key("outbound");
  w.RawValue(p.queues.data(), p.queues.size(), rapidjson::kArrayType);
  write_accounts(w, c->options, p.inbound);
  write_rate_limits(w, c->svc.limits.get());
  write_redis(w, c->svc, p.info);
  write_throughput(w, p.inbound, p.first_minute);
  w.EndObject();
  res.send(json_response(shell, http::status::ok, std::string(b.GetString(), b.GetSize())));
}

// Everything is asked at once (one script, the queue scripts, INFO): the commands leave
// pipelined on the broker's connection, so the answer costs about one round trip.
void overview(const ctx_ptr& c, const request& shell, responder res) {
  if (!c->svc.redis) return res.send(unavailable(shell));
  auto& redis = *c->svc.redis;
  const auto& k = c->keys;
  auto p = std::make_shared<overview_parts>();
  const auto now = sys_clock::now();
  p->now_ms = epoch_ms(now);
  p->first_minute = epoch_minute(now) - (chart_minutes - 1);
  auto done = [c, p, res, shell] {
    if (--p->pending == 0) answer_overview(c, shell, res, *p);
  };
  std::vector<std::string> keys{k.inbound(), k.inbound_dead(), k.inbound_unrouted(),
                                k.inbound_consumers()};
  for (std::int64_t i = 0; i < chart_minutes; ++i)
    keys.push_back(k.stats_minute(p->first_minute + i));
  for (const auto& entry : c->options.accounts) keys.push_back(k.account_health(entry.first));
  redis.eval(c->overview, std::move(keys),
             {k.inbound_processing(""), k.inbound_heartbeat(""), std::to_string(max_engines),
              std::to_string(chart_minutes)},
             res.executor(), [p, done](error_code ec, broker::reply r) {
               if (ec || r.is_error()) p->failed = true;
               p->inbound = std::move(r);
               done();
             });
  read_queue_stats(redis, k, c->options.channels, res.executor(),
                   [p, done](std::optional<std::string> queues) {
                     if (!queues) p->failed = true;
                     p->queues = queues.value_or("[]");
                     done();
                   });
  // Three sections in one INFO is Redis 7's; one command each works on every version.
  auto sections = std::make_shared<std::size_t>(3);
  for (const char* section : {"memory", "persistence", "server"}) {
    redis.post({"INFO", section}, res.executor(),
               [p, done, sections](error_code ec, broker::reply r) {
                 if (ec || !r.is_string()) p->failed = true;
                 p->info += r.str();
                 p->info += '\n';
                 if (--*sections == 0) done();
               });
  }
}

void list_inbound_dead(const ctx_ptr& c, const request& shell, responder res, std::int64_t limit) {
  if (!c->svc.redis) return res.send(unavailable(shell));
  read_dead_letters(*c->svc.redis, c->keys.inbound_dead(), limit, res.executor(),
                    [res, shell](std::optional<std::string> dead) {
                      if (!dead) return res.send(unavailable(shell));
                      res.send(json_response(shell, http::status::ok, "{\"dead\":" + *dead + "}"));
                    });
}

void retry_inbound_dead(const ctx_ptr& c, const request& shell, responder res) {
  if (!c->svc.redis) return res.send(unavailable(shell));
  c->svc.redis->eval(
      c->retry, {c->keys.inbound_dead(), c->keys.inbound()}, {}, res.executor(),
      [res, shell](error_code ec, broker::reply r) {
        if (ec || !r.is_integer()) return res.send(unavailable(shell));
        res.send(json_response(shell, http::status::ok,
                               "{\"requeued\":" + std::to_string(r.integer()) + "}"));
      });
}

}  // namespace

void add_admin_routes(router& routes, const services& svc, const contract::key_space& keys,
                      const console_options& options, session_lookup sessions) {
  auto c = std::make_shared<admin_context>(admin_context{svc, keys, options, std::move(sessions)});
  routes.add(http::verb::get, "/v1/admin/overview", [c](const request& req, responder res) {
    authorize_admin(req, std::move(res), c->options.admin_token, c->sessions,
                    [c, shell = request_shell(req)](responder res) { overview(c, shell, res); });
  });
  routes.add(http::verb::get, "/v1/admin/inbound/dead", [c](const request& req, responder res) {
    auto limit = dead_letters_limit(req.target());
    authorize_admin(req, std::move(res), c->options.admin_token, c->sessions,
                    [c, limit, shell = request_shell(req)](responder res) {
                      if (!limit) {
                        const auto& e = limit.error();
                        return res.send(json_error(shell, static_cast<http::status>(e.status),
                                                   e.code, e.message, e.field));
                      }
                      list_inbound_dead(c, shell, res, *limit);
                    });
  });
  routes.add(
      http::verb::post, "/v1/admin/inbound/dead/retry", [c](const request& req, responder res) {
        authorize_admin(
            req, std::move(res), c->options.admin_token, c->sessions,
            [c, shell = request_shell(req)](responder res) { retry_inbound_dead(c, shell, res); });
      });
}

}  // namespace bellhop::gateway
