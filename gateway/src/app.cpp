#include "bellhop/gateway/app.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <memory>
#include <thread>

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/embedded_redis.hpp"
#include "bellhop/console/admin_api.hpp"
#include "bellhop/console/console.hpp"
#include "bellhop/console/properties_api.hpp"
#include "bellhop/core/bearer.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/dashboard/conversation_state.hpp"
#include "bellhop/dashboard/conversation_state_api.hpp"
#include "bellhop/dashboard/conversations_api.hpp"
#include "bellhop/dashboard/escalator.hpp"
#include "bellhop/inbound/inbound_api.hpp"
#include "bellhop/inbound/inbound_reaper.hpp"
#include "bellhop/outbound/outbound.hpp"
#include "bellhop/outbound/outbound_api.hpp"
#include "bellhop/outbound/staff_replies.hpp"
#include "bellhop/realtime/service.hpp"
#include "bellhop/server/frame_text.hpp"
#include "bellhop/server/http_server.hpp"
#include "bellhop/server/json_response.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/transport/channel_transports.hpp"
#include "bellhop/transport/webchat.hpp"
#include "build_info.hpp"

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

void fail_line(const std::string& message) {
  std::fprintf(stderr, "bellhop: %s\n", message.c_str());
}

void add_redis_metrics(metrics_registry& metrics, const broker::broker& redis,
                       const broker::embedded_redis* embedded) {
  metrics.add_collector([&redis, embedded](std::string& out) {
    const auto s = redis.stats();
    auto one = [&out](std::string_view name, std::string_view help, metric_type type,
                      double value) {
      append_metric_header(out, name, help, type);
      append_metric_sample(out, name, {}, value);
    };
    one("bellhop_redis_up", "Whether the Redis command connection is ready (1) or not (0).",
        metric_type::gauge, s.up ? 1 : 0);
    one("bellhop_redis_commands_total", "Commands written to Redis.", metric_type::counter,
        static_cast<double>(s.commands));
    one("bellhop_redis_errors_total",
        "Redis commands that failed (error reply, timeout, connection lost).", metric_type::counter,
        static_cast<double>(s.errors));
    one("bellhop_redis_timeouts_total", "Redis commands that got no reply in time.",
        metric_type::counter, static_cast<double>(s.timeouts));
    one("bellhop_redis_reconnects_total", "Redis connections re-established after a loss.",
        metric_type::counter, static_cast<double>(s.reconnects));
    one("bellhop_redis_connection_failures_total",
        "Redis connection attempts or connections that failed.", metric_type::counter,
        static_cast<double>(s.connection_failures));
    one("bellhop_redis_oom_total",
        "Writes Redis refused because it reached maxmemory (answered 503 redis_full).",
        metric_type::counter, static_cast<double>(s.out_of_memory));
    if (embedded) {
      const auto e = embedded->stats();
      one("bellhop_embedded_redis_running", "Whether the embedded redis-server is running.",
          metric_type::gauge, e.running ? 1 : 0);
      one("bellhop_embedded_redis_restarts_total",
          "Times the embedded redis-server died and was restarted.", metric_type::counter,
          static_cast<double>(e.restarts));
    }
  });
}

// A reference to a shared_ptr the services keep until the process ends.
void add_redis_memory_metrics(metrics_registry& metrics, const redis_memory& memory) {
  metrics.add_collector([&memory](std::string& out) {
    auto one = [&out](std::string_view name, std::string_view help, double value) {
      append_metric_header(out, name, help, metric_type::gauge);
      append_metric_sample(out, name, {}, value);
    };
    one("bellhop_redis_used_memory_bytes", "Redis's used_memory at the last poll (every 250 ms).",
        static_cast<double>(memory.used_bytes()));
    one("bellhop_redis_maxmemory_bytes", "Redis's maxmemory (0 = no limit).",
        static_cast<double>(memory.max_bytes()));
    one("bellhop_redis_full",
        "1 from when Redis reaches 90% of its maxmemory until it is below 85%: new data is "
        "answered 503 redis_full.",
        memory.full() ? 1 : 0);
  });
}

void add_realtime_metrics(metrics_registry& metrics, const realtime::service& dashboards) {
  metrics.add_collector([&dashboards](std::string& out) {
    const auto& s = dashboards.stats();
    const auto& h = dashboards.hub_statistics();
    auto one = [&out](std::string_view name, std::string_view help, metric_type type,
                      const std::atomic<std::uint64_t>& value) {
      append_metric_header(out, name, help, type);
      append_metric_sample(out, name, {}, static_cast<double>(value.load()));
    };
    const auto counter = metric_type::counter;
    one("bellhop_realtime_sessions", "Open dashboard WebSocket sessions.", metric_type::gauge,
        s.sessions);
    one("bellhop_realtime_sessions_accepted_total", "Dashboard WebSocket handshakes completed.",
        counter, s.accepted);
    one("bellhop_realtime_refused_total",
        "Dashboards refused: missing, bad or expired token or console session, or over "
        "max_connections.",
        counter, s.refused);
    one("bellhop_realtime_console_accepted_total",
        "Dashboard WebSocket upgrades signed in with the console's session cookie.", counter,
        s.console_accepted);
    one("bellhop_realtime_console_sessions_ended_total",
        "Cookie-signed-in dashboards closed (4401) because their console session ended.", counter,
        s.console_sessions_ended);
    one("bellhop_realtime_slow_closed_total",
        "Dashboards closed because their send queue exceeded realtime.send_queue_bytes.", counter,
        s.slow_closed);
    one("bellhop_realtime_frames_received_total", "Frames received from dashboards.", counter,
        s.frames_in);
    one("bellhop_realtime_error_frames_total", "Error frames sent to dashboards.", counter,
        s.errors_sent);
    one("bellhop_realtime_replies_total", "Staff reply frames accepted for queueing.", counter,
        s.replies);
    one("bellhop_realtime_conversation_changes_total",
        "takeover, release and read frames accepted (docs/realtime.md).", counter,
        s.conversation_changes);
    one("bellhop_realtime_properties", "Properties with local dashboards (Redis SUBSCRIBEs).",
        metric_type::gauge, h.properties);
    one("bellhop_realtime_events_total", "Sequenced events received from Redis pub/sub.", counter,
        h.events);
    one("bellhop_realtime_deliveries_total", "Frames handed to dashboard sessions.", counter,
        h.deliveries);
    one("bellhop_realtime_gap_fills_total",
        "Events read from history because pub/sub skipped them (e.g. across a reconnect).", counter,
        h.gaps_filled);
    one("bellhop_realtime_gaps_unrecoverable_total",
        "Missed events that history no longer had (skipped).", counter, h.gaps_unrecoverable);
    one("bellhop_realtime_replayed_total", "Events replayed from history for subscribe since.",
        counter, h.replayed);
    one("bellhop_realtime_not_recovered_total",
        "Subscriptions answered recovered:false (history did not reach back).", counter,
        h.not_recovered);
    one("bellhop_realtime_redis_errors_total", "Failed Redis reads of the realtime hub.", counter,
        h.redis_errors);
    append_metric_header(
        out, "bellhop_websocket_invalid_utf8_dropped_total",
        "Texts from Redis not sent to a dashboard or web chat guest: not valid UTF-8.", counter);
    append_metric_sample(out, "bellhop_websocket_invalid_utf8_dropped_total", {},
                         static_cast<double>(server::invalid_utf8_dropped()));
  });
}

// GET /metrics; with a token, only for "Authorization: Bearer <token>".
void add_metrics_route(router& routes, metrics_registry& metrics, const std::string& token) {
  routes.add(http::verb::get, "/metrics", [&metrics, token](const request& req, responder res) {
    if (!token.empty() && !bearer_matches(req[http::field::authorization], token)) {
      auto out = json_error(req, http::status::unauthorized, "unauthorized",
                            "GET /metrics needs Authorization: Bearer <metrics.token>");
      out.set(http::field::www_authenticate, "Bearer");
      return res.send(std::move(out));
    }
    response out{http::status::ok, req.version()};
    out.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    out.keep_alive(req.keep_alive());
    out.body() = metrics.render();
    out.prepare_payload();
    res.send(std::move(out));
  });
}

// Each flow's options, from the config (each field's key is named in the flow's options.hpp).
inbound_options inbound_options_of(const config& cfg) {
  inbound_options io;
  io.max_text_bytes = static_cast<std::size_t>(cfg.inbound.max_text_bytes);
  io.max_body_bytes = cfg.http.max_body_bytes;
  io.dedup_ttl_s = cfg.inbound.dedup_ttl_s;
  io.message_ttl_s = cfg.inbound.message_ttl_s;
  io.history_max = cfg.inbound.history_max;
  io.conversation_ttl_s = cfg.realtime.conversation_ttl_s;
  io.recent_messages = cfg.realtime.recent_messages;
  io.max_deliveries = cfg.inbound.max_deliveries;
  io.reaper_interval_ms = cfg.inbound.reaper_interval_ms;
  io.consumer_scan_interval_ms = cfg.inbound.consumer_scan_interval_ms;
  return io;
}

outbound_options outbound_options_of(const config& cfg) {
  outbound_options oo;
  oo.concurrency = cfg.outbound.concurrency;
  oo.max_attempts = cfg.outbound.max_attempts;
  oo.backoff_initial_ms = cfg.outbound.backoff_initial_ms;
  oo.backoff_max_ms = cfg.outbound.backoff_max_ms;
  oo.visibility_timeout_ms = cfg.outbound.visibility_timeout_ms;
  oo.idempotency_ttl_s = cfg.outbound.idempotency_ttl_s;
  oo.message_ttl_s = cfg.inbound.message_ttl_s;
  oo.history_max = cfg.inbound.history_max;
  oo.conversation_ttl_s = cfg.realtime.conversation_ttl_s;
  oo.recent_messages = cfg.realtime.recent_messages;
  oo.admin_token = cfg.auth.admin_token;
  oo.max_body_bytes = cfg.http.max_body_bytes;
  oo.channels = channel_accounts(cfg);
  oo.properties = cfg.properties;
  return oo;
}

dashboard_options dashboard_options_of(const config& cfg) {
  dashboard_options d;
  d.jwt_secret = cfg.auth.jwt_secret;
  d.history_max = cfg.inbound.history_max;
  d.conversation_ttl_s = cfg.realtime.conversation_ttl_s;
  d.recent_messages = cfg.realtime.recent_messages;
  return d;
}

realtime::service_options realtime_options_of(const config& cfg, metrics_registry& metrics) {
  realtime::service_options ro;
  ro.jwt_secret = cfg.auth.jwt_secret;
  ro.max_connections = static_cast<std::size_t>(cfg.realtime.max_connections);
  ro.send_queue_bytes = static_cast<std::size_t>(cfg.realtime.send_queue_bytes);
  ro.max_frame_bytes = static_cast<std::size_t>(cfg.realtime.max_frame_bytes);
  ro.heartbeat = std::chrono::seconds(cfg.realtime.heartbeat_s);
  ro.idle_timeout = std::chrono::seconds(cfg.realtime.idle_timeout_s);
  ro.auth_timeout = std::chrono::milliseconds(cfg.realtime.auth_timeout_ms);
  ro.max_text_bytes = static_cast<std::size_t>(cfg.inbound.max_text_bytes);
  ro.hub.history_max_age = std::chrono::seconds(cfg.realtime.history_max_age_s);
  ro.hub.on_poison = [&poison = poison_metric(metrics)](std::string_view reason) {
    poison.labels({"event_history", reason}).inc();
  };
  return ro;
}

console_options console_options_of(const config& cfg) {
  console_options co;
  co.public_url = cfg.public_url;
  co.jwt_secret = cfg.auth.jwt_secret;
  co.admin_token = cfg.auth.admin_token;
  co.session_ttl_s = cfg.console.session_ttl_s;
  co.accounts = channel_accounts(cfg);
  co.properties = cfg.properties;
  for (const auto& [channel, accounts] : co.accounts) co.channels.push_back(channel);
  co.inbound_visibility_timeout_ms = cfg.inbound.visibility_timeout_ms;
  return co;
}

rate_limit_options rate_limit_options_of(const config& cfg) {
  rate_limit_options ro;
  ro.policies = cfg.ratelimit.policies;
  ro.inbound_api = cfg.ratelimit.inbound_api;
  ro.staff_replies = cfg.ratelimit.staff_replies;
  ro.webchat_session = cfg.ratelimit.webchat_session;
  ro.webchat_ip = cfg.ratelimit.webchat_ip;
  ro.console_login_user = cfg.ratelimit.console_login_user;
  ro.console_login_ip = cfg.ratelimit.console_login_ip;
  return ro;
}

transport_options transport_options_of(const config& cfg) {
  transport_options o;
  o.public_url = cfg.public_url;
  o.max_text_bytes = static_cast<std::size_t>(cfg.inbound.max_text_bytes);
  o.history_max = cfg.inbound.history_max;
  o.request_timeout = std::chrono::milliseconds(cfg.outbound.request_timeout_ms);
  o.concurrency = static_cast<std::size_t>(cfg.outbound.concurrency);
  o.whatsapp = cfg.channels.whatsapp;
  o.twilio = cfg.channels.twilio;
  o.email = cfg.channels.email;
  o.webchat = cfg.channels.webchat;
  return o;
}

// `ingest`: the atomic ingest, for the channels that are not routes (web chat). `sessions`: the
// console's session lookup, for the dashboards' WebSocket.
std::shared_ptr<router> make_routes(metrics_registry& metrics, const services& svc,
                                    const contract::key_space& keys, const config& cfg,
                                    const adapter_auth& auth, inbound_sink& ingest,
                                    session_lookup& sessions) {
  auto routes = std::make_shared<router>();
  // The console's session lookup: the staff and admin routes accept its cookie (docs/console.md).
  sessions = add_console_routes(*routes, svc, keys, console_options_of(cfg), metrics);
  add_admin_routes(*routes, svc, keys, console_options_of(cfg), sessions);
  add_properties_route(*routes, console_options_of(cfg), sessions);
  ingest = add_inbound_routes(*routes, svc, keys, inbound_options_of(cfg), auth, metrics);
  add_webhook_routes(*routes, svc, keys, transport_options_of(cfg), ingest, metrics);
  add_conversation_routes(*routes, svc, keys, dashboard_options_of(cfg), sessions, metrics);
  add_conversation_state_routes(*routes, svc, keys, dashboard_options_of(cfg), auth, sessions,
                                metrics);
  add_outbound_routes(*routes, svc, keys, outbound_options_of(cfg), auth, sessions);
  // Upgrades are taken over before routing (http_server::on_upgrade); a plain GET lands here.
  for (const char* path : {"/v1/realtime", "/v1/webchat"}) {
    routes->add(http::verb::get, path, [path](const request& req, responder res) {
      auto out = json_error(
          req, http::status::upgrade_required, "upgrade_required",
          std::string("GET ") + path + " is a WebSocket endpoint: send Upgrade: websocket");
      out.set(http::field::upgrade, "websocket");
      out.set(http::field::connection, "Upgrade");
      res.send(std::move(out));
    });
  }
  add_webchat_routes(*routes, transport_options_of(cfg));
  routes->add(http::verb::get, "/livez", [](const request& req, responder res) {
    res.send(json_response(req, http::status::ok, R"({"status":"ok"})"));
  });
  routes->add(http::verb::get, "/readyz", [&svc](const request& req, responder res) {
    auto unavailable = [](const request& r, std::string_view message) {
      return service_unavailable(r, "redis_unavailable", message, std::chrono::seconds(1));
    };
    if (!svc.redis) {
      res.send(unavailable(req, "starting: Redis is not connected yet"));
      return;
    }
    auto& redis = *svc.redis;
    if (svc.embedded && !svc.embedded->stats().running) {
      res.send(unavailable(req, "the embedded redis-server is not running; it is being restarted"));
      return;
    }
    if (!redis.ready()) {
      res.send(unavailable(req, "not connected to Redis at " + redis.options().endpoint.redacted() +
                                    "; reconnecting"));
      return;
    }
    // Connected is not enough (a frozen Redis keeps its socket): ask it.
    redis.post({"PING"}, res.executor(),
               [res, shell = request_shell(req), unavailable](boost::system::error_code ec,
                                                              broker::reply) {
                 if (ec) {
                   res.send(unavailable(shell, "Redis did not answer PING: " + ec.message()));
                   return;
                 }
                 res.send(json_response(shell, http::status::ok, R"({"status":"ready"})"));
               });
  });
  if (cfg.metrics.listen.empty()) add_metrics_route(*routes, metrics, cfg.metrics.token);
  return routes;
}

// By default one network thread per core but one: the Redis broker thread (and, by default,
// the embedded redis-server) needs a core too. On 2 cores one network thread accepted 4-8%
// more messages/s than two in bench/run_ingest_bench.sh (fewer lock hand-offs, see
// docs/configuration.md).
std::size_t network_threads(const config& cfg) {
  return cfg.http.threads > 0
             ? static_cast<std::size_t>(cfg.http.threads)
             : std::max(1u, std::max(1u, std::thread::hardware_concurrency()) - 1);
}

broker::embedded_redis_options embedded_redis_options_of(const config& cfg) {
  broker::embedded_redis_options eo;
  eo.data_dir = cfg.data_dir;
  eo.redis_server = cfg.redis.embedded.redis_server;
  eo.port = static_cast<std::uint16_t>(cfg.redis.embedded.port);
  eo.durability = cfg.redis.embedded.durability;
  eo.maxmemory = cfg.redis.embedded.maxmemory;
  eo.key_prefix = cfg.redis.key_prefix;
  return eo;
}

// The server's options of `http.*` on `at`; the one-line error names the key.
boost::system::result<http_options, std::string> http_options_of(const config& cfg,
                                                                 const listen_address& at) {
  http_options ho;
  ho.host = at.host;
  ho.port = at.port;
  ho.max_body_bytes = cfg.http.max_body_bytes;
  ho.read_timeout = std::chrono::milliseconds(cfg.http.read_timeout_ms);
  ho.idle_timeout = std::chrono::milliseconds(cfg.http.idle_timeout_ms);
  ho.max_connections = cfg.http.max_connections;
  ho.max_connections_per_client = cfg.http.max_connections_per_ip;
  auto proxies = trusted_proxies::parse(cfg.http.trusted_proxies);
  if (!proxies) {
    return boost::system::result<http_options, std::string>(
        boost::system::in_place_error, "config 'http.trusted_proxies': " + proxies.error());
  }
  ho.proxies = std::move(*proxies);
  return ho;
}

// metrics.listen: /metrics alone on its own address (e.g. loopback for a local Prometheus).
// Returns 0, or the exit code after printing why it could not start.
int start_metrics_server(asio::io_context& ioc, const config& cfg, const http_options& ho,
                         metrics_registry& metrics, std::unique_ptr<http_server>& out) {
  auto at = parse_listen(cfg.metrics.listen);
  if (!at) {
    fail_line(at.error());
    return exit_usage;
  }
  http_options mo = ho;
  mo.host = at->host;
  mo.port = at->port;
  mo.max_connections = 64;
  auto metrics_routes = std::make_shared<router>();
  add_metrics_route(*metrics_routes, metrics, cfg.metrics.token);
  out = std::make_unique<http_server>(ioc, mo, std::move(metrics_routes), metrics);
  if (auto started = out->start(); !started) {
    fail_line(started.error());
    return exit_failure;
  }
  spdlog::info("GET /metrics is served on {}:{} (metrics.listen), not on listen", at->host,
               out->port());
  return 0;
}

}  // namespace

// What a restart with `next` would change of what the flows took from `now` at start: the
// sections an operator edits while Bellhop runs, by name.
std::vector<std::string> changed_sections(const config& now, const config& next) {
  std::vector<std::string> changed;
  auto ids = [](const config& c) {
    std::vector<std::string> out;
    for (const auto& p : c.properties)
      out.push_back(
          p.id + "|" + p.name + "|" + p.time_zone + "|" +
          (p.quiet ? std::to_string(p.quiet->start_min) + "-" + std::to_string(p.quiet->end_min)
                   : "") +
          "|" +
          (p.escalation
               ? std::to_string(p.escalation->after_s) + p.escalation->email + p.escalation->sms
               : ""));
    return out;
  };
  if (ids(now) != ids(next)) changed.push_back("properties");
  auto accounts = [](const config& c) {
    std::vector<std::string> out;
    for (const auto& [channel, list] : channel_accounts(c))
      for (const auto& a : list) out.push_back(channel + ":" + a.id + ":" + a.property_id);
    return out;
  };
  if (accounts(now) != accounts(next)) changed.push_back("channel accounts");
  if (now.auth.adapter_keys.size() != next.auth.adapter_keys.size() ||
      now.auth.jwt_secret != next.auth.jwt_secret)
    changed.push_back("auth");
  if (now.listen != next.listen || now.redis.url != next.redis.url)
    changed.push_back("listen/redis");
  return changed;
}

int serve(const config& cfg, config_loader reload) {
  auto listen = parse_listen(cfg.listen);
  if (!listen) {
    fail_line(listen.error());
    return exit_usage;
  }
  const std::size_t threads = network_threads(cfg);

  // Check the Redis URL, bind the port, then start Redis: a port in use fails fast without
  // starting a redis-server for nothing.
  services svc;
  broker::redis_endpoint endpoint;
  if (cfg.redis.url == "embedded") {
    svc.embedded = std::make_unique<broker::embedded_redis>(embedded_redis_options_of(cfg));
  } else {
    auto ep = broker::parse_redis_url(cfg.redis.url);
    if (!ep) {
      fail_line("config 'redis.url': " + ep.error().message);
      return exit_usage;
    }
    endpoint = *ep;
  }

  // Before the io_context: handlers it still holds when it is destroyed (a WebSocket's
  // connection slot) update metrics on their way out.
  metrics_registry metrics;
  asio::io_context ioc(static_cast<int>(threads));
  metrics.add_gauge("bellhop_build_info", "Build of this bellhop process.", {"version", "commit"})
      .labels({build_info::version, build_info::commit})
      .set(1);

  auto http = http_options_of(cfg, *listen);
  if (!http) {
    fail_line(http.error());
    return exit_usage;
  }
  const http_options& ho = *http;
  const contract::key_space keys(cfg.redis.key_prefix);
  const adapter_auth auth(cfg.auth.adapter_keys);
  inbound_sink ingest;
  session_lookup sessions;
  http_server server(ioc, ho, make_routes(metrics, svc, keys, cfg, auth, ingest, sessions),
                     metrics);
  webchat_service webchat(svc, keys, transport_options_of(cfg), std::move(ingest), metrics);
  if (auto started = server.start(); !started) {
    fail_line(started.error());
    return exit_failure;
  }
  std::unique_ptr<http_server> metrics_server;
  if (!cfg.metrics.listen.empty()) {
    if (int failed = start_metrics_server(ioc, cfg, ho, metrics, metrics_server)) return failed;
  }

  if (svc.embedded) {
    if (auto started = svc.embedded->start(); !started) {
      fail_line(started.error());
      return exit_failure;
    }
    endpoint = svc.embedded->endpoint();
    spdlog::info("{}", svc.embedded->connect_hint());
  }
  broker::broker_options bo;
  bo.endpoint = endpoint;
  bo.command_timeout = std::chrono::milliseconds(cfg.redis.command_timeout_ms);
  bo.connect_timeout = std::chrono::milliseconds(cfg.redis.connect_timeout_ms);
  auto redis = std::make_unique<broker::broker>(bo);
  redis->start();
  add_redis_metrics(metrics, *redis, svc.embedded.get());
  svc.redis = std::move(redis);  // before ioc.run(): no request reads svc concurrently yet
  svc.limits = std::make_unique<rate_limits>(*svc.redis, keys, rate_limit_options_of(cfg));
  svc.memory = std::make_shared<redis_memory>(*svc.redis, ioc.get_executor(),
                                              std::chrono::milliseconds(250));
  svc.memory->start();
  add_redis_memory_metrics(metrics, *svc.memory);
  add_ratelimit_metrics(metrics, *svc.limits);
  inbound_reaper reaper(ioc.get_executor(), *svc.redis, keys, inbound_options_of(cfg), metrics);
  reaper.start();
  auto providers =
      std::make_shared<provider_client>(std::chrono::milliseconds(cfg.outbound.request_timeout_ms),
                                        static_cast<std::size_t>(cfg.outbound.concurrency));
  outbound_service outbound(
      ioc.get_executor(), *svc.redis, keys, outbound_options_of(cfg), svc.limits.get(),
      make_outbound_channels(transport_options_of(cfg), providers, svc.limits.get(), *svc.redis,
                             keys),
      metrics);
  outbound.start();
  // The properties with an escalation contact (docs/properties.md, "Escalation").
  escalator escalations(ioc.get_executor(), svc, keys, dashboard_options_of(cfg), cfg.properties,
                        metrics);
  escalations.start();

  realtime::service dashboards(
      ioc, *svc.redis, keys, realtime_options_of(cfg, metrics),
      make_staff_reply_queuer(*svc.redis, keys, outbound_options_of(cfg), svc.limits.get(),
                              ioc.get_executor(), svc.memory.get()),
      make_conversation_changer(
          std::make_shared<conversation_writer>(svc, keys, dashboard_options_of(cfg)),
          ioc.get_executor()),
      sessions);
  server.on_upgrade("/v1/realtime", [&dashboards](boost::beast::tcp_stream stream, request req,
                                                  upgrade_context ctx) {
    dashboards.accept(std::move(stream), std::move(req), std::move(ctx.slot));
  });
  server.on_upgrade("/v1/webchat",
                    [&webchat](boost::beast::tcp_stream stream, request req, upgrade_context ctx) {
                      webchat.accept(std::move(stream), std::move(req), std::move(ctx));
                    });
  add_realtime_metrics(metrics, dashboards);
  if (cfg.auth.jwt_secret.empty())
    spdlog::warn("auth.jwt_secret is empty: no staff dashboard can authenticate on /v1/realtime");
  spdlog::info("bellhop {} ({}) listening on {}:{} with {} threads; Redis at {}{}",
               build_info::version, build_info::commit, listen->host, server.port(), threads,
               svc.embedded ? "embedded " : "", endpoint.redacted());

  // Graceful stop: stop accepting, let in-flight requests finish (up to the timeout), then the
  // broker and the embedded Redis.
  // SIGHUP (`systemctl reload`, a habit of operators): checked and answered, never a stop.
  asio::signal_set hangups(ioc, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_hangup = [&](boost::system::error_code ec,
                                                                      int) {
    if (ec) return;
    if (!reload) {
      spdlog::warn("SIGHUP: nothing to reload from; restart bellhop to apply config changes");
    } else if (auto next = reload(); !next) {
      spdlog::error("SIGHUP: the config is not valid, the running one stays: {}", next.error());
    } else if (auto changed = changed_sections(cfg, *next); changed.empty()) {
      spdlog::info("SIGHUP: the config is valid and changes nothing this process reads at start");
    } else {
      std::string list;
      for (const auto& c : changed) list += (list.empty() ? "" : ", ") + c;
      spdlog::warn(
          "SIGHUP: the config is valid; {} changed, which bellhop reads at start only: restart "
          "it to apply them (in-flight messages are recovered, dashboards resume with since)",
          list);
    }
    hangups.async_wait(on_hangup);
  };
  hangups.async_wait(on_hangup);

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::steady_timer deadline(ioc);
  bool stopping = false;
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    if (stopping) {
      spdlog::warn("second signal {}: stopping now", sig);
      ioc.stop();
      return;
    }
    stopping = true;
    reaper.stop();          // releases its lease while the broker still runs
    svc.memory->stop();
    outbound.stop();        // no new sends; those in flight finish or are recovered later
    escalations.stop();
    dashboards.shutdown();  // 1001 going away
    spdlog::info("signal {}: shutting down (finishing in-flight requests, up to {} ms)", sig,
                 cfg.shutdown_timeout_ms);
    // The io_context stops when the main server and the metrics server (if any) are done.
    auto servers_left = std::make_shared<std::atomic<int>>(metrics_server ? 2 : 1);
    auto one_done = [&ioc, servers_left] {
      if (--*servers_left == 0) ioc.stop();
    };
    server.shutdown(one_done);
    if (metrics_server) metrics_server->shutdown(one_done);
    deadline.expires_after(std::chrono::milliseconds(cfg.shutdown_timeout_ms));
    deadline.async_wait([&](boost::system::error_code wait_ec) {
      if (wait_ec) return;
      spdlog::warn("shutdown timeout: closing {} open connections", server.active_connections());
      ioc.stop();
    });
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < threads; ++i) workers.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& w : workers) w.join();

  reaper.stop();
  outbound.stop();
  escalations.stop();
  svc.redis->stop();
  if (svc.embedded) svc.embedded->stop();
  svc.memory.reset();  // its timer belongs to the io_context, which goes first
  spdlog::info("bellhop stopped");
  return exit_ok;
}

}  // namespace bellhop::gateway
