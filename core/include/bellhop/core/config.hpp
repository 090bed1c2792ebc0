#pragma once

#include <boost/system/result.hpp>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/core/adapter_auth.hpp"  // adapter_key
#include "bellhop/core/rate_limits.hpp"   // ratelimit_policy, default_ratelimit_policies

// The settings of one bellhop process, as data: what gateway/ loads (defaults <- JSON file <-
// BELLHOP_* environment <- flags, bellhop/gateway/config.hpp) and turns into each flow's options
// (gateway/src/app.cpp; channels/transport/ still reads it whole). Every key, its type, default
// and environment variable is listed in docs/configuration.md.

namespace bellhop::gateway {

struct whatsapp_config {
  std::string app_secret, verify_token, access_token, phone_number_id,
      api_base_url = "https://graph.facebook.com/v21.0";
  std::string property_id;  // the property this number belongs to
};

struct twilio_config {
  std::string account_sid, auth_token, from, api_base_url = "https://api.twilio.com";
  std::string property_id;  // the property this number belongs to
};

// Email: guests' mail arrives through POST /v1/webhooks/email (a provider's inbound parse or a
// relay posts the documented JSON, signed with webhook_secret); replies go out by SMTP.
struct email_config {
  std::string webhook_secret;  // HMAC-SHA256 key of X-Bellhop-Signature
  std::string from_address;    // the hotel's address replies come from
  std::string from_name;       // its display name ("" = none)
  std::string smtp_url;        // smtp://host:587 (STARTTLS required) or smtps://host:465
  std::string smtp_username, smtp_password;  // AUTH; both empty = no AUTH
  std::string smtp_ca_file;  // PEM CA bundle for the server's certificate ("" = the system's)
  std::string property_id;   // the property this address belongs to
};

// Web chat: guests of the hotel's site on GET /v1/webchat (WebSocket), anonymous sessions.
struct webchat_config {
  std::string property_id;                // the property the chat belongs to
  int hold_s = 86400;                     // how long replies wait for a guest who is away
  std::string allowed_origin;             // the site's origin ("https://hotel.example"); "" = any
  std::size_t max_sockets = 10000;        // guest sockets per process; beyond: 503
  std::size_t max_sockets_per_ip = 100;   // per client address (IPv6: /64); beyond: 429
  std::size_t send_queue_bytes = 262144;  // unsent bytes per socket before it is closed as slow
  std::size_t max_in_flight = 8;  // messages per socket awaiting Redis; beyond, reading pauses
};

struct listen_address {
  std::string host;  // without brackets for IPv6; "0.0.0.0" for ":port"
  std::uint16_t port = 0;
};

struct config {
  std::string listen = "0.0.0.0:8080";
  std::string data_dir = "/var/lib/bellhop";
  std::string public_url;  // optional; http(s)://..., stored without trailing '/'
  int shutdown_timeout_ms = 10000;
  struct http_t {
    int threads = 0;  // 0 = number of cores minus one (at least 1)
    std::size_t max_body_bytes = 1048576;
    int read_timeout_ms = 10000;
    int idle_timeout_ms = 60000;
    std::size_t max_connections = 10000;
    std::size_t max_connections_per_ip = 500;  // per client address (IPv6: /64)
    // Addresses / CIDR networks whose X-Forwarded-For is believed; empty: none.
    std::vector<std::string> trusted_proxies;
  } http;
  struct redis_t {
    std::string url = "embedded";  // "embedded" | redis://[user:pass@]host:port[/db] | unix:///path
    std::string key_prefix;
    int command_timeout_ms = 5000;
    int connect_timeout_ms = 2000;
    struct embedded_t {
      int port = 6390;                      // 0 = no TCP listener, unix socket only
      std::string durability = "everysec";  // or "always"
      std::string maxmemory;                // "" (from the machine), "0" (no limit), e.g. "512mb"
      std::string redis_server = "redis-server";
    } embedded;
  } redis;
  struct inbound_t {
    int dedup_ttl_s = 604800;           // providers retry for days: remember external ids 7 days
    int message_ttl_s = 604800;         // message:<id> status records
    int visibility_timeout_ms = 30000;  // consumer heartbeat lifetime before its messages return
    int max_deliveries = 5;             // then inbound:messages:dead
    int reaper_interval_ms = 1000;
    // Full SCAN for processing lists of consumers missing from inbound:messages:consumers.
    int consumer_scan_interval_ms = 60000;
    int history_max = 10000;  // events kept per property for gapless resume
    int max_text_bytes = 16384;
  } inbound;
  struct realtime_t {
    int conversation_ttl_s = 2592000;  // conversation records, index entries, recent messages
    int recent_messages = 50;          // kept per conversation
    int history_max_age_s = 86400;     // `since` older than this is not replayed
    int max_connections = 10000;       // dashboards per process
    int send_queue_bytes = 1048576;    // unsent bytes per dashboard before it is closed as slow
    int max_frame_bytes = 65536;       // largest frame a dashboard may send
    int heartbeat_s = 30;         // clients ping this often (told in welcome); presence refresh
    int idle_timeout_s = 75;      // server pings after half of this in silence; closes after all
    int auth_timeout_ms = 10000;  // to send the auth frame when the URL had no token
  } realtime;
  struct outbound_t {
    int concurrency = 8;            // sends in flight per channel per process
    int max_attempts = 5;           // then outbound:<channel>:dead
    int backoff_initial_ms = 1000;  // first retry; doubles per attempt, with jitter
    int backoff_max_ms = 300000;
    int request_timeout_ms = 10000;     // one provider call, connect to last byte
    int visibility_timeout_ms = 30000;  // a process's in-flight sends return after this silence
    int idempotency_ttl_s = 86400;      // how long an idempotency_key is remembered
  } outbound;
  struct log_t {
    std::string level = "info";   // trace debug info warn error
    std::string format = "text";  // or "json"
  } log;
  struct metrics_t {
    // GET /metrics asks for Authorization: Bearer <token> ("" = no token needed).
    std::string token;
    // "host:port": /metrics is served there, alone, and no longer on `listen` ("" = on listen).
    std::string listen;
  } metrics;
  struct auth_t {
    std::vector<adapter_key> adapter_keys;
    std::string jwt_secret;
    std::string admin_token;
  } auth;
  struct ratelimit_t {
    // The defaults, plus or redefined by the file's policies.
    std::map<std::string, ratelimit_policy> policies = default_ratelimit_policies();
    std::string inbound_api;  // policy per adapter key on POST /v1/messages/inbound ("" = none)
    std::string staff_replies = "staff_reply";        // policy per dashboard session ("" = none)
    std::string webchat_session = "webchat_session";  // per web chat guest ("" = none)
    std::string webchat_ip = "webchat_ip";            // per web chat client address ("" = none)
  } ratelimit;
  struct channels_t {
    std::optional<whatsapp_config> whatsapp;
    std::optional<twilio_config> twilio;
    std::optional<email_config> email;
    std::optional<webchat_config> webchat;
  } channels;

  // Not configuration keys: what load_config saw.
  std::string source_file;               // file actually loaded; empty if none
  std::vector<std::string> unknown_env;  // BELLHOP_* variables that match no key (warned about)
};

// The channels Bellhop sends on (the configured ones: whatsapp, sms, email, webchat), each with
// the property it belongs to (channels.<name>.property_id).
std::map<std::string, std::string> channel_properties(const config& cfg);

}  // namespace bellhop::gateway
