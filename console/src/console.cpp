#include "bellhop/console/console.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <spdlog/spdlog.h>

#include <memory>

#include "bellhop/console/pages.hpp"
#include "bellhop/console/users.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/server/json_response.hpp"
#include "password_pool.hpp"
#include "session_store.hpp"

namespace bellhop::gateway {
namespace {

using boost::system::error_code;

// A sign-in body is two short strings.
constexpr std::size_t max_login_body = 4096;
// Password checks at once and waiting (docs/console.md, "Limits"): two threads of ~64 MiB each;
// the queue holds a front desk's morning rush (~0.1 s each), more is refused with 503.
constexpr std::size_t hash_threads = 2;
constexpr std::size_t max_pending_checks = 32;

struct auth_context {
  const services& svc;
  const contract::key_space keys;
  const console_options options;
  counter_family& logins;
  session_store sessions;
  password_pool passwords{hash_threads, max_pending_checks};

  auth_context(const services& s, const contract::key_space& k, console_options o,
               counter_family& l)
      : svc(s), keys(k), options(std::move(o)), logins(l), sessions(s, k, options.session_ttl_s) {}

  bool secure() const { return options.public_url.starts_with("https://"); }
  void count(std::string_view result) { logins.labels({result}).inc(); }
};
using ctx_ptr = std::shared_ptr<auth_context>;

// The Set-Cookie value of a session (docs/console.md, "The cookie"); an empty value with
// Max-Age=0 clears it.
std::string cookie_header(std::string_view value, int max_age_s, bool secure) {
  std::string out(session_cookie_name);
  out += '=';
  out += value;
  out += "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" + std::to_string(max_age_s);
  if (secure) out += "; Secure";
  return out;
}

// The body of login and me: {"user","role","properties","csrf_token","expires_at"}.
std::string principal_body(const staff_principal& p) {
  rapidjson::StringBuffer out;
  json::writer w(out);
  w.StartObject();
  json::put(w, "user", p.subject);
  json::put(w, "role", p.admin ? "admin" : "staff");
  w.Key("properties");
  w.StartArray();
  for (const auto& id : p.properties) json::write_string(w, id);
  w.EndArray();
  json::put(w, "csrf_token", p.csrf_token);
  json::put(w, "expires_at", contract::format_timestamp(p.expires));
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

response unavailable(const request& req, std::string_view why) {
  return service_unavailable(req, "unavailable", why, std::chrono::seconds(1));
}

response invalid_credentials(const request& req) {
  return json_error(req, http::status::unauthorized, "invalid_credentials",
                    "wrong user name or password");
}

struct credentials {
  std::string username, password;
};

// {"username": "...", "password": "..."} and nothing else, or the refusal to send.
boost::system::result<credentials, response> parse_login(const request& req) {
  using out = boost::system::result<credentials, response>;
  auto type = req[http::field::content_type];
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (type != "application/json")
    return out(boost::system::in_place_error,
               json_error(req, http::status::unsupported_media_type, "unsupported_media_type",
                          "Content-Type must be application/json"));
  rapidjson::Document d;
  const auto parsed = json::parse(req.body(), d, {.max_bytes = max_login_body, .max_depth = 2});
  if (parsed.code == json::error::too_large)
    return out(boost::system::in_place_error,
               json_error(req, http::status::payload_too_large, "payload_too_large",
                          "the body is larger than " + std::to_string(max_login_body) + " bytes"));
  if (!parsed || !d.IsObject())
    return out(boost::system::in_place_error,
               json_error(req, http::status::bad_request, "malformed_json",
                          "the body must be a JSON object {\"username\",\"password\"}"));
  credentials c;
  bool user = false, pass = false;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (name != "username" && name != "password")
      return out(boost::system::in_place_error,
                 json_error(req, http::status::bad_request, "unknown_field",
                            "unknown field; allowed: username, password"));
    if (!it->value.IsString())
      return out(boost::system::in_place_error,
                 json_error(req, http::status::bad_request, "invalid_field",
                            std::string(name) + " must be a string", name));
    std::string v(it->value.GetString(), it->value.GetStringLength());
    if (name == "username") {
      c.username = std::move(v);
      user = true;
    } else {
      c.password = std::move(v);
      pass = true;
    }
  }
  if (!user || !pass)
    return out(boost::system::in_place_error,
               json_error(req, http::status::bad_request, "invalid_field",
                          "username and password are required", user ? "password" : "username"));
  return c;
}

void finish_login(const ctx_ptr& ctx, responder res, request shell, std::string user,
                  std::string role, std::vector<std::string> properties) {
  ctx->sessions.create(user, res.executor(),
                       [ctx, res, shell = std::move(shell), role = std::move(role),
                        properties = std::move(properties)](session_store::created c) mutable {
                         if (c.status == session_status::unavailable) {
                           ctx->count("unavailable");
                           return res.send(unavailable(shell, "Redis is unavailable; retry later"));
                         }
                         if (c.status == session_status::none) {  // disabled or removed meanwhile
                           ctx->count("invalid_credentials");
                           return res.send(invalid_credentials(shell));
                         }
                         c.principal.admin = role == "admin";
                         c.principal.properties = std::move(properties);
                         ctx->count("ok");
                         spdlog::info("console: {} signed in", c.principal.subject);
                         auto r =
                             json_response(shell, http::status::ok, principal_body(c.principal));
                         r.set(http::field::set_cookie,
                               cookie_header(c.cookie, ctx->sessions.ttl_s(), ctx->secure()));
                         r.set(http::field::cache_control, "no-store");
                         res.send(std::move(r));
                       });
}

// The password is checked (on the pool) against the stored hash, or against a dummy one when
// the name is unknown, so both take as long.
void check_password(const ctx_ptr& ctx, responder res, request shell, credentials c) {
  broker::command hmget = {
      "HMGET", ctx->keys.console_user(c.username), "password", "role", "properties", "disabled"};
  ctx->svc.redis->post(
      std::move(hmget), res.executor(),
      [ctx, res, shell = std::move(shell), c = std::move(c)](error_code ec,
                                                             broker::reply r) mutable {
        if (ec || !r.is_array() || r.elements().size() != 4) {
          ctx->count("unavailable");
          return res.send(unavailable(shell, "Redis is unavailable; retry later"));
        }
        const auto& e = r.elements();
        auto properties = parse_properties(e[2].str());
        const bool usable =
            e[0].is_string() && is_role(e[1].str()) && properties && e[3].str() != "1";
        std::string stored = usable ? e[0].str() : std::string();
        std::string role = e[1].str();
        auto on_checked = [ctx, res, shell, user = c.username, role = std::move(role),
                           properties =
                               properties.value_or(std::vector<std::string>{})](bool ok) mutable {
          if (!ok) {
            ctx->count("invalid_credentials");
            spdlog::info("console: sign-in refused for {}", user);
            return res.send(invalid_credentials(shell));
          }
          finish_login(ctx, std::move(res), std::move(shell), std::move(user), std::move(role),
                       std::move(properties));
        };
        if (!ctx->passwords.verify(std::move(stored), std::move(c.password), res.executor(),
                                   std::move(on_checked))) {
          ctx->count("busy");
          res.send(unavailable(shell, "too many sign-ins at once; retry in a second"));
        }
      });
}

void login(const ctx_ptr& ctx, const request& req, responder res) {
  if (!same_origin(req)) {
    ctx->count("csrf_failed");
    return res.send(json_error(req, http::status::forbidden, "csrf_failed",
                               "the Origin header names another site"));
  }
  auto c = parse_login(req);
  if (!c) {
    ctx->count("invalid");
    return res.send(std::move(c.error()));
  }
  if (!ctx->svc.redis || !ctx->svc.limits) {
    ctx->count("unavailable");
    return res.send(unavailable(req, "Redis is unavailable (Bellhop is starting); retry later"));
  }
  // A name that cannot be one still counts against a limit of its own (its hash as subject).
  const std::string subject =
      is_user_name(c->username) ? c->username : "~" + contract::sha256_hex(c->username, 8);
  if (!is_user_name(c->username) || c->password.size() > max_password_bytes) c->username.clear();
  std::vector<ratelimit::limit_key> limits;
  if (const auto* p = ctx->svc.limits->console_login_user) limits.push_back({p, subject});
  if (const auto* p = ctx->svc.limits->console_login_ip) limits.push_back({p, res.client()});
  auto next = [ctx, res, shell = request_shell(req), c = std::move(*c)]() mutable {
    check_password(ctx, std::move(res), std::move(shell), std::move(c));
  };
  if (limits.empty()) return next();
  ctx->svc.limits->limiter.check(
      limits, 1, res.executor(),
      [ctx, res, shell = request_shell(req),
       next = std::move(next)](ratelimit::decision d) mutable {
        if (d.allowed) return next();
        if (d.degraded) {
          ctx->count("unavailable");
          return res.send(
              unavailable(shell, "the sign-in limit could not be checked; retry later"));
        }
        ctx->count("rate_limited");
        auto r = json_error(shell, http::status::too_many_requests, "too_many_attempts",
                            "too many sign-in attempts; retry after " +
                                std::to_string(ceil_seconds(d.retry_after_ms, 1)) + " s");
        set_ratelimit_headers(r, d);
        res.send(std::move(r));
      });
}

void logout(const ctx_ptr& ctx, const request& req, responder res) {
  if (!same_origin(req))
    return res.send(json_error(req, http::status::forbidden, "csrf_failed",
                               "the Origin header names another site"));
  auto signed_out = [ctx, res, shell = request_shell(req)](bool ok) {
    if (!ok) return res.send(unavailable(shell, "Redis is unavailable; retry later"));
    auto r = json_response(shell, http::status::ok, R"({"signed_out":true})");
    r.set(http::field::set_cookie, cookie_header("", 0, ctx->secure()));
    r.set(http::field::cache_control, "no-store");
    res.send(std::move(r));
  };
  const auto cookie = session_cookie(req[http::field::cookie]);
  if (cookie.empty()) return signed_out(true);
  ctx->sessions.end(std::string(cookie), res.executor(), std::move(signed_out));
}

void me(const ctx_ptr& ctx, const request& req, responder res) {
  const auto cookie = session_cookie(req[http::field::cookie]);
  if (cookie.empty())
    return res.send(json_error(req, http::status::unauthorized, "unauthorized", "not signed in"));
  ctx->sessions.lookup(
      std::string(cookie),
      [res, shell = request_shell(req)](session_status status, std::optional<staff_principal> p) {
        if (status == session_status::unavailable)
          return res.send(unavailable(shell, "Redis is unavailable; retry later"));
        if (status != session_status::ok || !p)
          return res.send(json_error(shell, http::status::unauthorized, "unauthorized",
                                     "the session has ended: sign in again"));
        auto r = json_response(shell, http::status::ok, principal_body(*p));
        r.set(http::field::cache_control, "no-store");
        res.send(std::move(r));
      });
}

}  // namespace

session_lookup add_console_routes(router& routes, const services& svc,
                                  const contract::key_space& keys, const console_options& options,
                                  metrics_registry& metrics) {
  auto ctx = std::make_shared<auth_context>(
      svc, keys, options,
      metrics.add_counter("bellhop_console_logins_total",
                          "Console sign-in attempts by result (ok, invalid_credentials, "
                          "rate_limited, busy, invalid, csrf_failed, unavailable).",
                          {"result"}));
  routes.add(http::verb::post, "/v1/auth/login",
             [ctx](const request& req, responder res) { login(ctx, req, std::move(res)); });
  routes.add(http::verb::post, "/v1/auth/logout",
             [ctx](const request& req, responder res) { logout(ctx, req, std::move(res)); });
  routes.add(http::verb::get, "/v1/auth/me",
             [ctx](const request& req, responder res) { me(ctx, req, std::move(res)); });
  session_lookup lookup = [ctx](std::string cookie, session_callback done) {
    ctx->sessions.lookup(cookie, std::move(done));
  };
  add_console_pages(routes, lookup);
  return lookup;
}

}  // namespace bellhop::gateway
