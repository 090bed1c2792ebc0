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

#include "bellhop/core/adapter_auth.hpp"      // adapter_key
#include "bellhop/core/outbound_lane.hpp"     // channel_account
#include "bellhop/core/property.hpp"          // property
#include "bellhop/core/ratelimit_policy.hpp"  // ratelimit_policy, default_ratelimit_policies
#include "bellhop/transport/options.hpp"      // the channels' sections

// Loading the configuration of one bellhop process: defaults <- JSON file <- BELLHOP_*
// environment <- flags. Every key, its type, default and environment variable is listed in
// docs/configuration.md.

namespace bellhop::gateway {

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
  struct console_t {
    int session_ttl_s = 43200;  // a console sign-in lasts this long (12 h: one shift)
  } console;
  struct ratelimit_t {
    // The defaults, plus or redefined by the file's policies.
    std::map<std::string, ratelimit_policy> policies = default_ratelimit_policies();
    std::string inbound_api;  // policy per adapter key on POST /v1/messages/inbound ("" = none)
    std::string staff_replies = "staff_reply";        // policy per dashboard session ("" = none)
    std::string webchat_session = "webchat_session";  // per web chat guest ("" = none)
    std::string webchat_ip = "webchat_ip";            // per web chat client address ("" = none)
    std::string console_login_user = "console_login_user";  // console sign-ins per user name
    std::string console_login_ip = "console_login_ip";      // console sign-ins per client address
  } ratelimit;
  // The hotels this gateway serves (docs/properties.md). Without a `properties` section, every
  // property id the config names (channels, adapter keys) is an implicit property: time zone
  // UTC, no quiet hours, no escalation; load_config fills them in (properties_declared false).
  std::vector<property> properties;
  struct channels_t {
    std::optional<whatsapp_config> whatsapp;
    std::optional<twilio_config> twilio;
    std::optional<email_config> email;
    std::optional<webchat_config> webchat;
  } channels;

  // Not configuration keys: what load_config saw.
  std::string source_file;               // file actually loaded; empty if none
  std::vector<std::string> unknown_env;  // BELLHOP_* variables that match no key (warned about)
  bool properties_declared = false;      // the file had a `properties` section
};

// Where the config names a property: the key ("channels.whatsapp.property_id",
// "auth.adapter_keys[0].properties[1]") and the id. Adapter keys' "*" is not a reference.
struct property_reference {
  std::string key;
  std::string id;
};
std::vector<property_reference> property_references(const config& cfg);

// The property of that id, or nullptr.
const property* find_property(const config& cfg, std::string_view id);

// The channels Bellhop sends on (the configured ones: whatsapp, sms, email, webchat), each with
// its accounts in the order of the configuration (the one-account form: one).
std::map<std::string, std::vector<channel_account>> channel_accounts(const config& cfg);

struct config_overrides {  // from command-line flags
  std::optional<std::string> config_file, listen, redis_url, data_dir;
};

inline constexpr std::string_view default_config_path = "/etc/bellhop/config.json";

// Loads defaults <- file <- BELLHOP_* environment <- flags, then validates.
// File: overrides.config_file, else env BELLHOP_CONFIG, else default_config_path if it exists,
// else none. A file named explicitly (flag or BELLHOP_CONFIG) must exist.
// `env` is the environment (main passes environment_map(environ)).
// Errors are one line naming the source and the key, e.g.
//   "config /etc/bellhop/config.json: 'http.max_body_bytes' must be a positive integer"
//   "environment BELLHOP_HTTP_THREADS: must be an integer"
//   "option --listen: ..."
boost::system::result<config, std::string> load_config(
    const config_overrides& overrides, const std::map<std::string, std::string>& env);
// Same, with the fallback file path injectable (tests).
boost::system::result<config, std::string> load_config(
    const config_overrides& overrides, const std::map<std::string, std::string>& env,
    const std::filesystem::path& default_file);

// The file's part of load_config on text already read, without environment or flags: defaults
// <- text, then validated. Errors name `label` where load_config names "config <path>".
boost::system::result<config, std::string> parse_config_text(std::string_view text,
                                                             std::string_view label);

std::map<std::string, std::string> environment_map(char** envp);

// "host:port", "[::1]:8080", ":8080" (all interfaces, host "0.0.0.0"). Port 0..65535.
boost::system::result<listen_address, std::string> parse_listen(std::string_view text);

// Whether a listen address accepts only connections from this host (127.0.0.0/8, ::1,
// localhost). An invalid address is not.
bool is_loopback_listen(std::string_view listen);

// Non-fatal problems worth a warn line at startup (no adapter keys, empty secrets, unknown
// BELLHOP_* variables, ...). One sentence each.
std::vector<std::string> config_warnings(const config& cfg);

// For `check-config`: each provider webhook that is refused because its channel (and so the
// secret that verifies it) is not configured. Not warned at every start: a hotel without SMS
// need not hear about it each time.
std::vector<std::string> webhook_warnings(const config& cfg);

// A complete, valid, commented config file with fresh random secrets (auth.jwt_secret,
// auth.admin_token, one adapter key "default-adapter" for all properties).
// Throws std::runtime_error only if the system RNG fails.
std::string generate_config_text(const std::string& data_dir, const std::string& listen);

// Writes text to path with mode 0600; it is never readable by others, not even briefly.
// Refuses to replace an existing file unless force (then replaced atomically by rename).
boost::system::result<void, std::string> write_secret_file(const std::filesystem::path& path,
                                                           const std::string& text, bool force);

}  // namespace bellhop::gateway
