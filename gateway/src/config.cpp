#include "bellhop/gateway/config.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <span>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "bellhop/contract/secrets.hpp"
#include "bellhop/core/client_address.hpp"
#include "bellhop/core/quiet_hours.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {
namespace {

using status = boost::system::result<void, std::string>;

status fail(std::string message) {
  return status(boost::system::in_place_error, std::move(message));
}

// ---------------------------------------------------------------------------------------------
// Field tables. Each configurable scalar is described once; the file parser, the environment
// loader (variable names are derived from the paths) and the flags all work from these entries.

using field_target =
    std::variant<std::string*, int*, std::size_t*, std::int64_t*, std::vector<std::string>*>;

enum class int_rule { any, non_negative, positive, port };

// Returns what is wrong with a string value ("must be ..."), or "" if it is acceptable.
using string_check = std::string (*)(std::string_view);

template <class T>
struct field {
  std::string_view path;  // dotted path relative to T
  field_target (*target)(T&);
  int_rule rule = int_rule::any;
  string_check check = nullptr;
  bool required = false;  // must be present (records) / non-empty (optional config sections)
};

bool has_control_or_space(std::string_view v) {
  return std::any_of(v.begin(), v.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

std::string one_of(std::string_view v, std::initializer_list<std::string_view> allowed) {
  if (std::find(allowed.begin(), allowed.end(), v) != allowed.end()) return "";
  std::string message = "must be one of ";
  for (auto it = allowed.begin(); it != allowed.end(); ++it) {
    if (it != allowed.begin()) message += ", ";
    message += *it;
  }
  return message;
}

std::string check_property_id(std::string_view v) {
  return contract::is_property_id(v) ? "" : "must be 1-64 letters, digits, '-', '_' or '.'";
}

std::string check_not_empty(std::string_view v) {
  return v.empty() ? "must not be empty" : "";
}

std::string listen_problem(std::string_view text, listen_address* out);

std::string check_listen(std::string_view v) {
  std::string problem = listen_problem(v, nullptr);
  return problem.empty() ? "" : "must be host:port, [ipv6]:port or :port (" + problem + ")";
}

std::string check_optional_listen(std::string_view v) {
  return v.empty() ? "" : check_listen(v);
}

// The token travels as a bearer token, like the adapter keys.
std::string check_metrics_token(std::string_view v) {
  if (v.empty()) return "";
  if (v.size() < 16) return "must be empty or at least 16 characters long";
  bool ok = std::all_of(v.begin(), v.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
  return ok ? "" : "must contain only printable ASCII characters without spaces";
}

bool is_http_url(std::string_view v) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (v.starts_with(scheme) && v.size() > scheme.size() && v[scheme.size()] != '/' &&
        !has_control_or_space(v)) {
      return true;
    }
  }
  return false;
}

std::string check_http_url(std::string_view v) {
  return is_http_url(v) ? "" : "must be an http:// or https:// URL";
}

std::string check_smtp_url(std::string_view v) {
  for (std::string_view scheme : {"smtp://", "smtps://"}) {
    if (v.starts_with(scheme) && v.size() > scheme.size() && !has_control_or_space(v)) return "";
  }
  return "must be smtp://host[:port] (STARTTLS) or smtps://host[:port]";
}

// An address as SMTP takes it: local@domain, nothing that could end a header or a command.
std::string check_email_address(std::string_view v) {
  const auto at = v.find('@');
  const bool ok = at != std::string_view::npos && at > 0 && at + 1 < v.size() &&
                  v.find('@', at + 1) == std::string_view::npos && v.size() <= 254 &&
                  !has_control_or_space(v) && v.find_first_of("<>,;\"\\") == std::string_view::npos;
  return ok ? "" : "must be an email address (local@domain)";
}

std::string check_public_url(std::string_view v) {
  return v.empty() ? "" : check_http_url(v);
}

std::string check_redis_url(std::string_view v) {
  if (v == "embedded") return "";
  for (std::string_view scheme : {"redis://", "unix://"}) {
    if (v.starts_with(scheme) && v.size() > scheme.size() && !has_control_or_space(v)) return "";
  }
  return "must be \"embedded\", redis://[user:password@]host:port[/db] or unix:///path";
}

std::string check_key_prefix(std::string_view v) {
  return has_control_or_space(v) ? "must not contain spaces or control characters" : "";
}

// Passed verbatim into the generated redis.conf, so only digits and a unit get through.
std::string check_maxmemory(std::string_view v) {
  if (v.empty()) return "";
  auto digits_end = std::find_if(v.begin(), v.end(), [](char c) { return c < '0' || c > '9'; });
  std::string unit(digits_end, v.end());
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  bool ok =
      digits_end != v.begin() && one_of(unit, {"", "b", "k", "kb", "m", "mb", "g", "gb"}).empty();
  return ok ? "" : "must be empty (sized from the machine), 0 (no limit) or a size such as 512mb";
}

std::string check_durability(std::string_view v) {
  return one_of(v, {"everysec", "always"});
}
std::string check_level(std::string_view v) {
  return one_of(v, {"trace", "debug", "info", "warn", "error"});
}
std::string check_format(std::string_view v) {
  return one_of(v, {"text", "json"});
}
std::string check_algorithm(std::string_view v) {
  return one_of(v, {"fixed_window", "sliding_window", "gcra"});
}
std::string check_fail(std::string_view v) {
  return one_of(v, {"open", "closed"});
}

// Names end up in Redis keys (ratelimit:<policy>:<adapter>) and log lines.
std::string check_name(std::string_view v) {
  if (v.empty()) return "must not be empty";
  bool ok = std::all_of(v.begin(), v.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
  return ok ? "" : "must contain only letters, digits, '-', '_' and '.'";
}

std::string check_trusted_proxy(std::string_view v) {
  return trusted_proxies::check(v);
}

std::string check_time_zone(std::string_view v) {
  return time_zone_problem(v);
}

// "HH:MM", 00:00 to 23:59: minutes after midnight, or -1.
int clock_minutes(std::string_view v) {
  auto digit = [&](std::size_t i) { return v[i] >= '0' && v[i] <= '9' ? v[i] - '0' : -100; };
  if (v.size() != 5 || v[2] != ':') return -1;
  const int h = digit(0) * 10 + digit(1), m = digit(3) * 10 + digit(4);
  return h < 0 || h > 23 || m < 0 || m > 59 ? -1 : h * 60 + m;
}

std::string check_clock_time(std::string_view v) {
  return clock_minutes(v) < 0 ? "must be a local time HH:MM (00:00 to 23:59)" : "";
}

std::string check_e164(std::string_view v) {
  const bool ok = v.size() >= 9 && v.size() <= 16 && v[0] == '+' && v[1] != '0' &&
                  std::all_of(v.begin() + 1, v.end(), [](char c) { return c >= '0' && c <= '9'; });
  return ok ? "" : "must be a phone number in E.164 form (+ and 8 to 15 digits)";
}

// Adapter keys travel as bearer tokens.
std::string check_adapter_key(std::string_view v) {
  if (v.size() < 16) return "must be at least 16 characters long";
  bool ok = std::all_of(v.begin(), v.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
  return ok ? "" : "must contain only printable ASCII characters without spaces";
}

template <class T>
T& engage(std::optional<T>& section) {
  if (!section) section.emplace();
  return *section;
}

// The key path is the member path, so keys cannot drift from the struct.
#define BELLHOP_KEY(member) #member, [](config & c) -> field_target { return &c.member; }
#define BELLHOP_CHANNEL_KEY(channel, member) \
  "channels." #channel "." #member,          \
      [](config& c) -> field_target { return &engage(c.channels.channel).member; }

const field<config> config_fields[] = {
    {BELLHOP_KEY(listen), int_rule::any, check_listen},
    {BELLHOP_KEY(data_dir), int_rule::any, check_not_empty},
    {BELLHOP_KEY(public_url), int_rule::any, check_public_url},
    {BELLHOP_KEY(shutdown_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(http.threads), int_rule::non_negative},
    {BELLHOP_KEY(http.max_body_bytes), int_rule::positive},
    {BELLHOP_KEY(http.read_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(http.idle_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(http.max_connections), int_rule::positive},
    {BELLHOP_KEY(http.max_connections_per_ip), int_rule::positive},
    {BELLHOP_KEY(http.trusted_proxies), int_rule::any, check_trusted_proxy},
    {BELLHOP_KEY(redis.url), int_rule::any, check_redis_url},
    {BELLHOP_KEY(redis.key_prefix), int_rule::any, check_key_prefix},
    {BELLHOP_KEY(redis.command_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(redis.connect_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(redis.embedded.port), int_rule::port},
    {BELLHOP_KEY(redis.embedded.durability), int_rule::any, check_durability},
    {BELLHOP_KEY(redis.embedded.maxmemory), int_rule::any, check_maxmemory},
    {BELLHOP_KEY(redis.embedded.redis_server), int_rule::any, check_not_empty},
    {BELLHOP_KEY(inbound.dedup_ttl_s), int_rule::positive},
    {BELLHOP_KEY(inbound.message_ttl_s), int_rule::positive},
    {BELLHOP_KEY(inbound.visibility_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(inbound.max_deliveries), int_rule::positive},
    {BELLHOP_KEY(inbound.reaper_interval_ms), int_rule::positive},
    {BELLHOP_KEY(inbound.consumer_scan_interval_ms), int_rule::positive},
    {BELLHOP_KEY(inbound.history_max), int_rule::positive},
    {BELLHOP_KEY(inbound.max_text_bytes), int_rule::positive},
    {BELLHOP_KEY(realtime.conversation_ttl_s), int_rule::positive},
    {BELLHOP_KEY(realtime.recent_messages), int_rule::positive},
    {BELLHOP_KEY(realtime.history_max_age_s), int_rule::positive},
    {BELLHOP_KEY(realtime.max_connections), int_rule::positive},
    {BELLHOP_KEY(realtime.send_queue_bytes), int_rule::positive},
    {BELLHOP_KEY(realtime.max_frame_bytes), int_rule::positive},
    {BELLHOP_KEY(realtime.heartbeat_s), int_rule::positive},
    {BELLHOP_KEY(realtime.idle_timeout_s), int_rule::positive},
    {BELLHOP_KEY(realtime.auth_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(outbound.concurrency), int_rule::positive},
    {BELLHOP_KEY(outbound.max_attempts), int_rule::positive},
    {BELLHOP_KEY(outbound.backoff_initial_ms), int_rule::positive},
    {BELLHOP_KEY(outbound.backoff_max_ms), int_rule::positive},
    {BELLHOP_KEY(outbound.request_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(outbound.visibility_timeout_ms), int_rule::positive},
    {BELLHOP_KEY(outbound.idempotency_ttl_s), int_rule::positive},
    {BELLHOP_KEY(log.level), int_rule::any, check_level},
    {BELLHOP_KEY(log.format), int_rule::any, check_format},
    {BELLHOP_KEY(metrics.token), int_rule::any, check_metrics_token},
    {BELLHOP_KEY(metrics.listen), int_rule::any, check_optional_listen},
    {BELLHOP_KEY(auth.jwt_secret)},
    {BELLHOP_KEY(auth.admin_token)},
    {BELLHOP_KEY(console.session_ttl_s), int_rule::positive},
    {BELLHOP_KEY(ratelimit.inbound_api)},
    {BELLHOP_KEY(ratelimit.staff_replies)},
    {BELLHOP_KEY(ratelimit.webchat_session)},
    {BELLHOP_KEY(ratelimit.webchat_ip)},
    {BELLHOP_KEY(ratelimit.console_login_user)},
    {BELLHOP_KEY(ratelimit.console_login_ip)},
    {BELLHOP_CHANNEL_KEY(whatsapp, app_secret), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(whatsapp, verify_token), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(whatsapp, access_token), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(whatsapp, phone_number_id), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(whatsapp, api_base_url), int_rule::any, check_http_url},
    {BELLHOP_CHANNEL_KEY(whatsapp, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_CHANNEL_KEY(whatsapp, service_window_s), int_rule::non_negative},
    {BELLHOP_CHANNEL_KEY(twilio, account_sid), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(twilio, auth_token), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(twilio, from), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(twilio, api_base_url), int_rule::any, check_http_url},
    {BELLHOP_CHANNEL_KEY(twilio, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_CHANNEL_KEY(email, webhook_secret), int_rule::any, check_not_empty, true},
    {BELLHOP_CHANNEL_KEY(email, from_address), int_rule::any, check_email_address, true},
    {BELLHOP_CHANNEL_KEY(email, from_name)},
    {BELLHOP_CHANNEL_KEY(email, smtp_url), int_rule::any, check_smtp_url, true},
    {BELLHOP_CHANNEL_KEY(email, smtp_username)},
    {BELLHOP_CHANNEL_KEY(email, smtp_password)},
    {BELLHOP_CHANNEL_KEY(email, smtp_ca_file)},
    {BELLHOP_CHANNEL_KEY(email, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_CHANNEL_KEY(webchat, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_CHANNEL_KEY(webchat, hold_s), int_rule::positive},
    {BELLHOP_CHANNEL_KEY(webchat, allowed_origin), int_rule::any, check_public_url},
    {BELLHOP_CHANNEL_KEY(webchat, max_sockets), int_rule::positive},
    {BELLHOP_CHANNEL_KEY(webchat, max_sockets_per_ip), int_rule::positive},
    {BELLHOP_CHANNEL_KEY(webchat, send_queue_bytes), int_rule::positive},
    {BELLHOP_CHANNEL_KEY(webchat, max_in_flight), int_rule::positive},
};

#undef BELLHOP_KEY
#undef BELLHOP_CHANNEL_KEY

// The accounts of a channel section (channels.<name>.accounts[i], web chat's sites[i]): what
// an account leaves out that the section has (a secret, the SMTP server) is the section's.
#define BELLHOP_ACCOUNT_KEY(type, member) \
#member, [](type & a) -> field_target { return &a.member; }

const field<whatsapp_account> whatsapp_account_fields[] = {
    {BELLHOP_ACCOUNT_KEY(whatsapp_account, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_ACCOUNT_KEY(whatsapp_account, phone_number_id), int_rule::any, check_not_empty, true},
    {BELLHOP_ACCOUNT_KEY(whatsapp_account, access_token), int_rule::any, check_not_empty, true},
    {BELLHOP_ACCOUNT_KEY(whatsapp_account, app_secret), int_rule::any, check_not_empty},
    {BELLHOP_ACCOUNT_KEY(whatsapp_account, verify_token), int_rule::any, check_not_empty},
};

const field<twilio_account> twilio_account_fields[] = {
    {BELLHOP_ACCOUNT_KEY(twilio_account, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_ACCOUNT_KEY(twilio_account, account_sid), int_rule::any, check_not_empty, true},
    {BELLHOP_ACCOUNT_KEY(twilio_account, auth_token), int_rule::any, check_not_empty, true},
    {BELLHOP_ACCOUNT_KEY(twilio_account, from), int_rule::any, check_not_empty, true},
};

const field<email_account> email_account_fields[] = {
    {BELLHOP_ACCOUNT_KEY(email_account, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_ACCOUNT_KEY(email_account, address), int_rule::any, check_email_address, true},
    {BELLHOP_ACCOUNT_KEY(email_account, webhook_secret), int_rule::any, check_not_empty},
    {BELLHOP_ACCOUNT_KEY(email_account, from_name)},
    {BELLHOP_ACCOUNT_KEY(email_account, smtp_url), int_rule::any, check_smtp_url},
    {BELLHOP_ACCOUNT_KEY(email_account, smtp_username)},
    {BELLHOP_ACCOUNT_KEY(email_account, smtp_password)},
    {BELLHOP_ACCOUNT_KEY(email_account, smtp_ca_file)},
};

const field<webchat_site> webchat_site_fields[] = {
    {BELLHOP_ACCOUNT_KEY(webchat_site, id), int_rule::any, check_name, true},
    {BELLHOP_ACCOUNT_KEY(webchat_site, property_id), int_rule::any, check_property_id, true},
    {BELLHOP_ACCOUNT_KEY(webchat_site, allowed_origin), int_rule::any, check_public_url},
};

#undef BELLHOP_ACCOUNT_KEY

constexpr std::string_view whatsapp_accounts_path = "channels.whatsapp.accounts";
constexpr std::string_view twilio_accounts_path = "channels.twilio.accounts";
constexpr std::string_view email_accounts_path = "channels.email.accounts";
constexpr std::string_view webchat_sites_path = "channels.webchat.sites";

// Sections that exist only when configured (by a file object or by any of their variables).
// `listed`: the section lists its accounts (then its one-account fields are not required; each
// account's are, checked by check_channel_accounts).
struct optional_section {
  std::string_view path;
  bool (*active)(const config&);
  void (*activate)(config&);
  bool (*listed)(const config&);
};

const optional_section optional_sections[] = {
    {"channels.whatsapp", [](const config& c) { return c.channels.whatsapp.has_value(); },
     [](config& c) { engage(c.channels.whatsapp); },
     [](const config& c) { return !c.channels.whatsapp->accounts.empty(); }},
    {"channels.twilio", [](const config& c) { return c.channels.twilio.has_value(); },
     [](config& c) { engage(c.channels.twilio); },
     [](const config& c) { return !c.channels.twilio->accounts.empty(); }},
    {"channels.email", [](const config& c) { return c.channels.email.has_value(); },
     [](config& c) { engage(c.channels.email); },
     [](const config& c) { return !c.channels.email->accounts.empty(); }},
    {"channels.webchat", [](const config& c) { return c.channels.webchat.has_value(); },
     [](config& c) { engage(c.channels.webchat); },
     [](const config& c) { return !c.channels.webchat->sites.empty(); }},
};

const field<adapter_key> adapter_key_fields[] = {
    {"name", [](adapter_key& k) -> field_target { return &k.name; }, int_rule::any, check_name,
     true},
    {"key", [](adapter_key& k) -> field_target { return &k.key; }, int_rule::any, check_adapter_key,
     true},
    {"properties", [](adapter_key& k) -> field_target { return &k.properties; }, int_rule::any,
     nullptr, true},
};

const field<ratelimit_policy> policy_fields[] = {
    {"algorithm", [](ratelimit_policy& p) -> field_target { return &p.algorithm; }, int_rule::any,
     check_algorithm, true},
    {"limit", [](ratelimit_policy& p) -> field_target { return &p.limit; }, int_rule::positive,
     nullptr, true},
    {"window_ms", [](ratelimit_policy& p) -> field_target { return &p.window_ms; },
     int_rule::positive, nullptr, true},
    {"burst", [](ratelimit_policy& p) -> field_target { return &p.burst; }, int_rule::non_negative},
    {"fail", [](ratelimit_policy& p) -> field_target { return &p.fail; }, int_rule::any,
     check_fail},
};

// A property's `quiet_hours` as written, before it becomes minutes.
struct clock_window {
  std::string start, end;
};

const field<property> property_fields[] = {
    {"id", [](property& p) -> field_target { return &p.id; }, int_rule::any, check_property_id,
     true},
    {"name", [](property& p) -> field_target { return &p.name; }},
    {"time_zone", [](property& p) -> field_target { return &p.time_zone; }, int_rule::any,
     check_time_zone, true},
};

const field<clock_window> quiet_hours_fields[] = {
    {"start", [](clock_window& w) -> field_target { return &w.start; }, int_rule::any,
     check_clock_time, true},
    {"end", [](clock_window& w) -> field_target { return &w.end; }, int_rule::any, check_clock_time,
     true},
};

const field<escalation_contact> escalation_fields[] = {
    {"after_s", [](escalation_contact& e) -> field_target { return &e.after_s; },
     int_rule::positive},
    {"email", [](escalation_contact& e) -> field_target { return &e.email; }, int_rule::any,
     check_email_address},
    {"sms", [](escalation_contact& e) -> field_target { return &e.sms; }, int_rule::any,
     check_e164},
};

constexpr std::string_view properties_path = "properties";
constexpr std::string_view adapter_keys_path = "auth.adapter_keys";
constexpr std::string_view policies_path = "ratelimit.policies";
constexpr std::string_view env_prefix = "BELLHOP_";
constexpr std::string_view config_env = "BELLHOP_CONFIG";

std::string env_name(std::string_view path) {
  std::string name(env_prefix);
  for (char c : path) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

const field<config>* find_field(std::string_view path) {
  for (const auto& f : config_fields) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

bool is_under(std::string_view path, std::string_view section) {
  return path.size() > section.size() && path.starts_with(section) && path[section.size()] == '.';
}

bool is_section(std::string_view path) {
  if (is_under(adapter_keys_path, path) || is_under(policies_path, path)) return true;
  return std::any_of(std::begin(config_fields), std::end(config_fields),
                     [&](const auto& f) { return is_under(f.path, path); });
}

// ---------------------------------------------------------------------------------------------
// Assigning values.

std::string rule_message(int_rule rule) {
  switch (rule) {
    case int_rule::non_negative:
      return "must be a non-negative integer";
    case int_rule::positive:
      return "must be a positive integer";
    case int_rule::port:
      return "must be a port number (0-65535)";
    case int_rule::any:
      break;
  }
  return "must be an integer";
}

// Stores an integer that is already known to be one; checks the rule and the target's range.
std::string assign_integer(field_target target, std::int64_t value, int_rule rule) {
  bool ok = rule == int_rule::any || (rule == int_rule::non_negative && value >= 0) ||
            (rule == int_rule::positive && value > 0) ||
            (rule == int_rule::port && value >= 0 && value <= 65535);
  if (!ok) return rule_message(rule);
  return std::visit(
      [&](auto* out) -> std::string {
        using T = std::remove_pointer_t<decltype(out)>;
        if constexpr (std::is_integral_v<T>) {
          if (std::cmp_greater(value, std::numeric_limits<T>::max())) {
            return "must be at most " + std::to_string(std::numeric_limits<T>::max());
          }
          if (std::cmp_less(value, std::numeric_limits<T>::min())) {
            return "must be at least " + std::to_string(std::numeric_limits<T>::min());
          }
          *out = static_cast<T>(value);
          return "";
        } else {
          return "must not be a number";  // unreachable: callers check the target type
        }
      },
      target);
}

std::string assign_string(field_target target, std::string value, string_check check) {
  if (value.find('\0') != std::string::npos) return "must not contain NUL characters";
  if (check != nullptr) {
    if (std::string problem = check(value); !problem.empty()) return problem;
  }
  *std::get<std::string*>(target) = std::move(value);
  return "";
}

bool is_integer_target(const field_target& t) {
  return !std::holds_alternative<std::string*>(t) &&
         !std::holds_alternative<std::vector<std::string>*>(t);
}

// A value from the environment or a flag. Integers are parsed strictly: "12x", " 1", "+1" fail.
std::string assign_text(std::string_view text, field_target target, int_rule rule,
                        string_check check) {
  if (std::holds_alternative<std::string*>(target)) {
    return assign_string(target, std::string(text), check);
  }
  if (auto* list = std::get_if<std::vector<std::string>*>(&target)) {
    // From the environment: comma-separated, spaces around items ignored; "" = empty list.
    std::vector<std::string> items;
    while (!text.empty()) {
      const auto comma = text.find(',');
      auto item = text.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item.empty()) return "must be a comma-separated list without empty items";
      if (std::string problem = check != nullptr ? check(item) : ""; !problem.empty())
        return "'" + std::string(item) + "' " + problem;
      items.emplace_back(item);
      text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    }
    **list = std::move(items);
    return "";
  }
  if (!is_integer_target(target)) return "cannot be set from text";
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) return "is out of range";
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return "must be an integer";
  }
  return assign_integer(target, value, rule);
}

std::string_view json_type_name(const field_target& t) {
  if (std::holds_alternative<std::string*>(t)) return "must be a string";
  if (std::holds_alternative<std::vector<std::string>*>(t)) {
    return "must be a non-empty array of strings";
  }
  return "must be an integer";
}

// Everything known about where values came from, so errors name the right source.
struct origin {
  std::string label;  // "config /x.json", "environment BELLHOP_X", "option --listen"
  std::string key;    // the key this source stands for (variables, flags); empty for files
};

std::string describe(const origin& o, std::string_view key, std::string_view problem) {
  if (!o.key.empty() && o.key == key) return o.label + ": " + std::string(problem);
  return o.label + ": '" + std::string(key) + "' " + std::string(problem);
}

class loader {
 public:
  explicit loader(config& cfg) : cfg_(cfg) {}

  status load_file(const std::string& path);
  // The file's text, already read; errors name `label` ("config <path>").
  status load_text(std::string_view json, std::string label);
  status load_env(const std::map<std::string, std::string>& env);
  status apply_flag(std::string_view flag, std::string_view path, const std::string& value);
  status validate();

 private:
  status walk_object(const rapidjson::Value& object, const std::string& prefix);
  // A record's member that is an object of its own (a property's quiet_hours): its name and
  // what reads it.
  struct nested_member {
    std::string_view name;
    std::function<status(const rapidjson::Value&, const std::string& path)> read;
  };
  template <class T>
  status walk_record(const rapidjson::Value& object, const std::string& prefix, T& out,
                     std::span<const field<T>> fields, std::span<const nested_member> nested = {});
  status assign_json(const rapidjson::Value& v, field_target target, int_rule rule,
                     string_check check, const std::string& path);
  template <class T>
  status load_list(const rapidjson::Value& v, const std::string& path, std::vector<T>& out,
                   std::span<const field<T>> fields);
  status load_adapter_keys(const rapidjson::Value& v);
  status check_channel_accounts();
  status load_policies(const rapidjson::Value& v);
  status load_properties(const rapidjson::Value& v);
  status check_property_references();
  status file_error(const std::string& key, std::string_view problem) {
    return fail(describe(file_origin_, key, problem));
  }
  const origin& origin_of(std::string path) const;

  config& cfg_;
  origin file_origin_{"config", ""};
  std::map<std::string, origin> origins_;
};

status loader::assign_json(const rapidjson::Value& v, field_target target, int_rule rule,
                           string_check check, const std::string& path) {
  if (auto* list = std::get_if<std::vector<std::string>*>(&target)) {
    if (!v.IsArray() || v.Empty()) return file_error(path, json_type_name(target));
    std::vector<std::string> items;
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      std::string item_path = path + "[" + std::to_string(i) + "]";
      if (!v[i].IsString() || v[i].GetStringLength() == 0) {
        return file_error(item_path, "must be a non-empty string");
      }
      items.emplace_back(v[i].GetString(), v[i].GetStringLength());
      if (std::string problem = check != nullptr ? check(items.back()) : ""; !problem.empty()) {
        return file_error(item_path, problem);
      }
    }
    **list = std::move(items);
    return {};
  }
  std::string problem;
  if (std::holds_alternative<std::string*>(target)) {
    if (!v.IsString()) return file_error(path, json_type_name(target));
    problem = assign_string(target, std::string(v.GetString(), v.GetStringLength()), check);
  } else if (v.IsInt64()) {
    problem = assign_integer(target, v.GetInt64(), rule);
  } else if (v.IsUint64()) {
    problem = "is out of range";
  } else {
    problem = json_type_name(target);
  }
  if (!problem.empty()) return file_error(path, problem);
  return {};
}

status loader::walk_object(const rapidjson::Value& object, const std::string& prefix) {
  std::set<std::string_view> seen;
  for (const auto& member : object.GetObject()) {
    std::string_view name(member.name.GetString(), member.name.GetStringLength());
    std::string path = prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
    if (name.find('.') != std::string_view::npos) {
      return fail(file_origin_.label + ": key '" + path +
                  "' contains '.': write nested objects instead");
    }
    if (!seen.insert(name).second) {
      return fail(file_origin_.label + ": duplicate key '" + path + "'");
    }
    const rapidjson::Value& v = member.value;
    if (const field<config>* f = find_field(path)) {
      if (auto r = assign_json(v, f->target(cfg_), f->rule, f->check, path); !r) return r;
      origins_[path] = file_origin_;
    } else if (path == adapter_keys_path) {
      if (auto r = load_adapter_keys(v); !r) return r;
    } else if (path == policies_path) {
      if (auto r = load_policies(v); !r) return r;
    } else if (path == properties_path) {
      if (auto r = load_properties(v); !r) return r;
    } else if (path == whatsapp_accounts_path) {
      auto& list = engage(cfg_.channels.whatsapp).accounts;
      if (auto r = load_list<whatsapp_account>(v, path, list, whatsapp_account_fields); !r)
        return r;
    } else if (path == twilio_accounts_path) {
      auto& list = engage(cfg_.channels.twilio).accounts;
      if (auto r = load_list<twilio_account>(v, path, list, twilio_account_fields); !r) return r;
    } else if (path == email_accounts_path) {
      auto& list = engage(cfg_.channels.email).accounts;
      if (auto r = load_list<email_account>(v, path, list, email_account_fields); !r) return r;
    } else if (path == webchat_sites_path) {
      auto& list = engage(cfg_.channels.webchat).sites;
      if (auto r = load_list<webchat_site>(v, path, list, webchat_site_fields); !r) return r;
    } else if (is_section(path)) {
      if (!v.IsObject()) return file_error(path, "must be an object");
      for (const auto& section : optional_sections) {
        if (section.path == path) section.activate(cfg_);
      }
      origins_[path] = file_origin_;
      if (auto r = walk_object(v, path); !r) return r;
    } else {
      return fail(file_origin_.label + ": unknown key '" + path + "'");
    }
  }
  return {};
}

template <class T>
status loader::walk_record(const rapidjson::Value& object, const std::string& prefix, T& out,
                           std::span<const field<T>> fields,
                           std::span<const nested_member> nested) {
  if (!object.IsObject()) return file_error(prefix, "must be an object");
  std::set<std::string_view> seen;
  for (const auto& member : object.GetObject()) {
    std::string_view name(member.name.GetString(), member.name.GetStringLength());
    std::string path = prefix + "." + std::string(name);
    if (!seen.insert(name).second) {
      return fail(file_origin_.label + ": duplicate key '" + path + "'");
    }
    auto n =
        std::find_if(nested.begin(), nested.end(), [&](const auto& n) { return n.name == name; });
    if (n != nested.end()) {
      if (!member.value.IsObject()) return file_error(path, "must be an object");
      if (auto r = n->read(member.value, path); !r) return r;
      continue;
    }
    auto f =
        std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.path == name; });
    if (f == fields.end()) return fail(file_origin_.label + ": unknown key '" + path + "'");
    if (auto r = assign_json(member.value, f->target(out), f->rule, f->check, path); !r) return r;
  }
  for (const auto& f : fields) {
    if (f.required && !seen.contains(f.path)) {
      return file_error(prefix + "." + std::string(f.path), "is required");
    }
  }
  return {};
}

// A channel's accounts (or web chat's sites): a non-empty array of records.
template <class T>
status loader::load_list(const rapidjson::Value& v, const std::string& path, std::vector<T>& out,
                         std::span<const field<T>> fields) {
  if (!v.IsArray() || v.Empty()) return file_error(path, "must be a non-empty array of objects");
  std::vector<T> items;
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    T item;
    const std::string at = path + "[" + std::to_string(i) + "]";
    if (auto r = walk_record<T>(v[i], at, item, fields); !r) return r;
    items.push_back(std::move(item));
  }
  out = std::move(items);
  origins_[path] = file_origin_;
  return {};
}

status loader::load_adapter_keys(const rapidjson::Value& v) {
  const std::string path(adapter_keys_path);
  if (!v.IsArray()) return file_error(path, "must be an array of objects");
  std::vector<adapter_key> keys;
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    std::string item = path + "[" + std::to_string(i) + "]";
    adapter_key key;
    if (auto r = walk_record<adapter_key>(v[i], item, key, adapter_key_fields); !r) return r;
    for (std::size_t j = 0; j < keys.size(); ++j) {
      std::string other = path + "[" + std::to_string(j) + "]";
      if (keys[j].name == key.name) {
        return file_error(item + ".name", "is already used by " + other);
      }
      // The key itself is a secret: never echo it.
      if (keys[j].key == key.key) return file_error(item + ".key", "is the same as " + other);
    }
    keys.push_back(std::move(key));
  }
  cfg_.auth.adapter_keys = std::move(keys);
  return {};
}

status loader::load_policies(const rapidjson::Value& v) {
  const std::string path(policies_path);
  if (!v.IsObject()) return file_error(path, "must be an object");
  // The file's policies add to the defaults, or redefine one by its name.
  std::map<std::string, ratelimit_policy> policies = cfg_.ratelimit.policies;
  std::set<std::string> seen;
  for (const auto& member : v.GetObject()) {
    std::string name(member.name.GetString(), member.name.GetStringLength());
    std::string item = path + "." + name;
    if (std::string problem = check_name(name); !problem.empty()) {
      return file_error(item, "is not a valid policy name: it " + problem);
    }
    ratelimit_policy policy;
    if (auto r = walk_record<ratelimit_policy>(member.value, item, policy, policy_fields); !r) {
      return r;
    }
    if (!seen.insert(name).second) {
      return fail(file_origin_.label + ": duplicate key '" + item + "'");
    }
    policies[name] = policy;
  }
  cfg_.ratelimit.policies = std::move(policies);
  return {};
}

status loader::load_properties(const rapidjson::Value& v) {
  const std::string path(properties_path);
  if (!v.IsArray() || v.Empty()) return file_error(path, "must be a non-empty array of objects");
  std::vector<property> properties;
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    const std::string item = path + "[" + std::to_string(i) + "]";
    property p;
    p.time_zone.clear();  // required here: UTC is only the implicit properties' zone
    const nested_member nested[] = {
        {"quiet_hours",
         [&](const rapidjson::Value& object, const std::string& at) -> status {
           clock_window w;
           if (auto r = walk_record<clock_window>(object, at, w, quiet_hours_fields); !r) return r;
           const quiet_hours q{clock_minutes(w.start), clock_minutes(w.end)};
           if (q.start_min == q.end_min) {
             return file_error(at + ".end", "must differ from start (" + w.start + ")");
           }
           p.quiet = q;
           return {};
         }},
        {"escalation",
         [&](const rapidjson::Value& object, const std::string& at) -> status {
           escalation_contact e;
           if (auto r = walk_record<escalation_contact>(object, at, e, escalation_fields); !r)
             return r;
           if (e.email.empty() && e.sms.empty()) {
             return file_error(at, "needs an email or an sms contact (or both)");
           }
           p.escalation = std::move(e);
           return {};
         }},
    };
    if (auto r = walk_record<property>(v[i], item, p, property_fields, nested); !r) return r;
    for (std::size_t j = 0; j < properties.size(); ++j) {
      if (properties[j].id == p.id) {
        return file_error(item + ".id", "'" + p.id + "' is already the id of " + path + "[" +
                                            std::to_string(j) + "]");
      }
    }
    properties.push_back(std::move(p));
  }
  cfg_.properties = std::move(properties);
  cfg_.properties_declared = true;
  origins_[path] = file_origin_;
  return {};
}

// With a `properties` section, every property the config names must be in it; without one,
// each becomes an implicit property (docs/properties.md, "Upgrading from one property per
// gateway").
status loader::check_property_references() {
  for (const auto& ref : property_references(cfg_)) {
    if (find_property(cfg_, ref.id) != nullptr) continue;
    if (cfg_.properties_declared) {
      return fail(
          describe(origin_of(ref.key), ref.key,
                   "names property '" + ref.id + "', which is not in the properties section"));
    }
    property implicit;
    implicit.id = ref.id;
    cfg_.properties.push_back(std::move(implicit));
  }
  return {};
}

}  // namespace

namespace {

boost::system::result<std::string, std::string> read_file(const std::string& path) {
  using r = boost::system::result<std::string, std::string>;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return r(boost::system::in_place_error, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return r(boost::system::in_place_error, "is a directory");
  }
  std::string text;
  std::array<char, 65536> buf;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return r(boost::system::in_place_error, std::strerror(err));
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return r(boost::system::in_place_value, std::move(text));
}

status loader::load_file(const std::string& path) {
  file_origin_ = origin{"config " + path, ""};
  auto text = read_file(path);
  if (!text) return fail(file_origin_.label + ": cannot read: " + text.error());
  cfg_.source_file = path;
  return load_text(*text, file_origin_.label);
}

status loader::load_text(std::string_view json, std::string label) {
  file_origin_ = origin{std::move(label), ""};
  std::size_t skip = json.starts_with("\xEF\xBB\xBF") ? 3 : 0;  // editors' UTF-8 BOM

  // A config file is a few KiB; 16 MiB leaves room for long key lists. 32 levels: the deepest
  // key path is far shallower, and walk_object recurses once per level.
  rapidjson::Document doc;
  const auto parsed = json::parse(std::string_view(json).substr(skip), doc,
                                  {.max_bytes = 16 << 20, .max_depth = 32, .comments = true});
  if (parsed.code == json::error::too_large)
    return fail(file_origin_.label + ": larger than 16 MiB");
  if (!parsed) {
    std::size_t offset = std::min(skip + parsed.offset, json.size());
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
      if (json[i] == '\n') {
        ++line;
        column = 1;
      } else if ((static_cast<unsigned char>(json[i]) & 0xC0) != 0x80 && i >= skip) {
        ++column;  // count characters, not UTF-8 continuation bytes
      }
    }
    return fail(file_origin_.label + ": line " + std::to_string(line) + ", column " +
                std::to_string(column) + ": " +
                (parsed.code == json::error::too_deep ? "JSON nested deeper than 32 levels"
                 : parsed.code == json::error::invalid_utf8
                     ? "a string is not valid UTF-8"
                     : "invalid JSON: " + std::string(parsed.detail)));
  }
  if (!doc.IsObject()) return fail(file_origin_.label + ": the top level must be a JSON object");
  return walk_object(doc, "");
}

status loader::load_env(const std::map<std::string, std::string>& env) {
  std::set<std::string> known{std::string(config_env)};
  for (const auto& f : config_fields) {
    std::string name = env_name(f.path);
    known.insert(name);
    auto it = env.find(name);
    if (it == env.end()) continue;
    origin source{"environment " + name, std::string(f.path)};
    std::string problem = assign_text(it->second, f.target(cfg_), f.rule, f.check);
    if (!problem.empty()) return fail(describe(source, f.path, problem));
    for (const auto& section : optional_sections) {
      // The first variable that creates a section answers for it (e.g. missing siblings).
      if (is_under(f.path, section.path)) origins_.try_emplace(std::string(section.path), source);
    }
    origins_[std::string(f.path)] = std::move(source);
  }
  for (const auto& [name, value] : env) {
    if (name.starts_with(env_prefix) && !known.contains(name)) cfg_.unknown_env.push_back(name);
  }
  return {};
}

status loader::apply_flag(std::string_view flag, std::string_view path, const std::string& value) {
  const field<config>* f = find_field(path);
  origin source{"option " + std::string(flag), std::string(path)};
  std::string problem = assign_text(value, f->target(cfg_), f->rule, f->check);
  if (!problem.empty()) return fail(describe(source, path, problem));
  origins_[std::string(path)] = std::move(source);
  return {};
}

// The most specific known source of a key: the key itself, else its nearest section, else the
// file.
const origin& loader::origin_of(std::string path) const {
  for (;;) {
    if (auto it = origins_.find(path); it != origins_.end()) return it->second;
    auto dot = path.rfind('.');
    if (dot == std::string::npos) return file_origin_;
    path.resize(dot);
  }
}

// Checks that involve more than one key, after every source has been applied.
status loader::validate() {
  while (cfg_.public_url.ends_with('/')) cfg_.public_url.pop_back();

  for (const auto& section : optional_sections) {
    if (!section.active(cfg_) || section.listed(cfg_)) continue;
    for (const auto& f : config_fields) {
      if (!f.required || !is_under(f.path, section.path)) continue;
      if (std::get<std::string*>(f.target(cfg_))->empty()) {
        return fail(describe(origin_of(std::string(f.path)), f.path,
                             "is required when " + std::string(section.path) + " is configured"));
      }
    }
  }

  if (auto r = check_channel_accounts(); !r) return r;

  for (const auto& [key, name] :
       {std::pair{"ratelimit.inbound_api", &cfg_.ratelimit.inbound_api},
        std::pair{"ratelimit.staff_replies", &cfg_.ratelimit.staff_replies},
        std::pair{"ratelimit.webchat_session", &cfg_.ratelimit.webchat_session},
        std::pair{"ratelimit.webchat_ip", &cfg_.ratelimit.webchat_ip},
        std::pair{"ratelimit.console_login_user", &cfg_.ratelimit.console_login_user},
        std::pair{"ratelimit.console_login_ip", &cfg_.ratelimit.console_login_ip}}) {
    if (!name->empty() && !cfg_.ratelimit.policies.contains(*name)) {
      return fail(
          describe(origin_of(key), key,
                   "names policy '" + *name + "', which is not defined in ratelimit.policies"));
    }
  }
  for (const auto& [name, policy] : cfg_.ratelimit.policies) {
    if (auto problem = ratelimit::validate(to_ratelimit_policy(name, policy)); !problem.empty()) {
      const std::string item = std::string(policies_path) + "." + name;
      return fail(describe(origin_of(item), item, problem));
    }
  }
  if (auto r = check_property_references(); !r) return r;
  // A client pinging every heartbeat_s must never look idle to the server.
  if (cfg_.realtime.heartbeat_s >= cfg_.realtime.idle_timeout_s) {
    return fail(describe(origin_of("realtime.heartbeat_s"), "realtime.heartbeat_s",
                         "must be less than realtime.idle_timeout_s (" +
                             std::to_string(cfg_.realtime.idle_timeout_s) + ")"));
  }
  return {};
}

namespace {

std::string item_path(std::string_view list, std::size_t i) {
  return std::string(list) + "[" + std::to_string(i) + "]";
}

std::string lower_case(std::string v) {
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

void default_to(std::string& value, const std::string& section_value) {
  if (value.empty()) value = section_value;
}

}  // namespace

// Each channel's accounts (docs/properties.md, "Accounts and routing"): the one-account form
// becomes accounts[0]; a list takes the section's shared values where an account leaves them
// out, may not sit beside the one-account fields, and names each account once.
status loader::check_channel_accounts() {
  auto alone =
      [&](std::string_view list,
          std::initializer_list<std::pair<std::string_view, const std::string*>> fields) -> status {
    for (const auto& [key, value] : fields) {
      if (value->empty()) continue;
      return fail(describe(origin_of(std::string(key)), key,
                           "must not be set together with " + std::string(list) +
                               " (set it in each account instead)"));
    }
    return {};
  };
  auto required = [&](std::string_view list, std::size_t i, std::string_view member,
                      const std::string& value) -> status {
    if (!value.empty()) return {};
    const std::string key = item_path(list, i) + "." + std::string(member);
    const std::string section(list.substr(0, list.rfind('.')));
    return fail(describe(origin_of(key), key,
                         "is required (in the account, or as " + section + "." +
                             std::string(member) + " for all of them)"));
  };
  auto unique = [&](std::string_view list, std::string_view member,
                    const std::vector<std::string>& ids) -> status {
    std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto [it, fresh] = first.emplace(ids[i], i);
      if (fresh) continue;
      const std::string key = item_path(list, i) + "." + std::string(member);
      return fail(
          describe(origin_of(key), key, "is already used by " + item_path(list, it->second)));
    }
    return {};
  };

  if (auto& wa = cfg_.channels.whatsapp) {
    if (wa->accounts.empty()) {
      wa->accounts.push_back({wa->property_id, wa->phone_number_id, wa->access_token,
                              wa->app_secret, wa->verify_token});
    } else {
      if (auto r = alone(whatsapp_accounts_path,
                         {{"channels.whatsapp.property_id", &wa->property_id},
                          {"channels.whatsapp.phone_number_id", &wa->phone_number_id},
                          {"channels.whatsapp.access_token", &wa->access_token}});
          !r)
        return r;
      for (std::size_t i = 0; i < wa->accounts.size(); ++i) {
        auto& a = wa->accounts[i];
        default_to(a.app_secret, wa->app_secret);
        default_to(a.verify_token, wa->verify_token);
        if (auto r = required(whatsapp_accounts_path, i, "app_secret", a.app_secret); !r) return r;
        if (auto r = required(whatsapp_accounts_path, i, "verify_token", a.verify_token); !r)
          return r;
      }
    }
    std::vector<std::string> ids;
    for (const auto& a : wa->accounts) ids.push_back(a.phone_number_id);
    if (auto r = unique(whatsapp_accounts_path, "phone_number_id", ids); !r) return r;
  }

  if (auto& tw = cfg_.channels.twilio) {
    if (tw->accounts.empty()) {
      tw->accounts.push_back({tw->property_id, tw->account_sid, tw->auth_token, tw->from});
    } else if (auto r =
                   alone(twilio_accounts_path, {{"channels.twilio.property_id", &tw->property_id},
                                                {"channels.twilio.account_sid", &tw->account_sid},
                                                {"channels.twilio.auth_token", &tw->auth_token},
                                                {"channels.twilio.from", &tw->from}});
               !r) {
      return r;
    }
    std::vector<std::string> ids;
    for (const auto& a : tw->accounts) ids.push_back(a.from);
    if (auto r = unique(twilio_accounts_path, "from", ids); !r) return r;
  }

  if (auto& em = cfg_.channels.email) {
    if (em->accounts.empty()) {
      em->accounts.push_back({em->property_id, em->from_address, "", em->webhook_secret,
                              em->from_name, em->smtp_url, em->smtp_username, em->smtp_password,
                              em->smtp_ca_file});
    } else {
      if (auto r = alone(email_accounts_path, {{"channels.email.property_id", &em->property_id},
                                               {"channels.email.from_address", &em->from_address}});
          !r)
        return r;
      for (std::size_t i = 0; i < em->accounts.size(); ++i) {
        auto& a = em->accounts[i];
        default_to(a.webhook_secret, em->webhook_secret);
        default_to(a.from_name, em->from_name);
        default_to(a.smtp_url, em->smtp_url);
        default_to(a.smtp_username, em->smtp_username);
        default_to(a.smtp_password, em->smtp_password);
        default_to(a.smtp_ca_file, em->smtp_ca_file);
        if (auto r = required(email_accounts_path, i, "webhook_secret", a.webhook_secret); !r)
          return r;
        if (auto r = required(email_accounts_path, i, "smtp_url", a.smtp_url); !r) return r;
      }
    }
    // The adapter gives the address a guest wrote to in lower case.
    std::vector<std::string> ids;
    for (auto& a : em->accounts) ids.push_back(a.id = lower_case(a.address));
    if (auto r = unique(email_accounts_path, "address", ids); !r) return r;
  }

  if (auto& wc = cfg_.channels.webchat) {
    if (wc->sites.empty()) {
      wc->sites.push_back({"default", wc->property_id, wc->allowed_origin});
    } else {
      if (auto r = alone(webchat_sites_path, {{"channels.webchat.property_id", &wc->property_id}});
          !r)
        return r;
      for (auto& site : wc->sites) default_to(site.allowed_origin, wc->allowed_origin);
    }
    std::vector<std::string> ids;
    for (const auto& site : wc->sites) ids.push_back(site.id);
    if (auto r = unique(webchat_sites_path, "id", ids); !r) return r;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Helpers for the other entry points.

std::string listen_problem(std::string_view text, listen_address* out) {
  if (text.empty()) return "it is empty";
  std::string host;
  std::string_view port;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return "missing ']' after the IPv6 address";
    host = std::string(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.starts_with(':')) return "expected ':port' after ']'";
    port = rest.substr(1);
    std::string address = host.substr(0, host.find('%'));  // allow a zone: [fe80::1%eth0]
    in6_addr parsed{};
    if (::inet_pton(AF_INET6, address.c_str(), &parsed) != 1) {
      return "'" + host + "' is not an IPv6 address";
    }
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return "the port is missing";
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
      return "IPv6 addresses must be written in brackets, e.g. [::1]:8080";
    }
    bool valid_host = std::all_of(host.begin(), host.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '.';
    });
    if (!valid_host || host.size() > 253) return "'" + host + "' is not a valid host name";
    if (host.empty()) host = "0.0.0.0";
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec == std::errc::invalid_argument || end != port.data() + port.size()) {
    return "the port must be a number";  // also rejects "", "+1", " 1"
  }
  if (ec == std::errc::result_out_of_range || value > 65535) {
    return "the port must be between 0 and 65535";
  }
  if (out != nullptr) *out = listen_address{std::move(host), static_cast<std::uint16_t>(value)};
  return "";
}

// 32 random bytes, base64url without padding (43 characters).
std::string random_secret() {
  auto secret = contract::random_secret(32);
  if (!secret) {
    throw std::runtime_error("cannot generate secrets: the system random generator failed");
  }
  return std::move(*secret);
}

status write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  // umask may have taken bits away; the mode is exactly 0600 either way.
  if (::fchmod(fd, S_IRUSR | S_IWUSR) != 0 || ::fsync(fd) != 0) return fail(std::strerror(errno));
  return {};
}

}  // namespace

boost::system::result<config, std::string> load_config(
    const config_overrides& overrides, const std::map<std::string, std::string>& env) {
  return load_config(overrides, env, std::filesystem::path(default_config_path));
}

boost::system::result<config, std::string> load_config(
    const config_overrides& overrides, const std::map<std::string, std::string>& env,
    const std::filesystem::path& default_file) {
  using result = boost::system::result<config, std::string>;
  auto error = [](std::string message) {
    return result(boost::system::in_place_error, std::move(message));
  };

  config cfg;
  loader load(cfg);

  std::optional<std::string> file;
  if (overrides.config_file) {
    if (overrides.config_file->empty()) return error("option --config: must not be empty");
    file = *overrides.config_file;
  } else if (auto it = env.find(std::string(config_env)); it != env.end() && !it->second.empty()) {
    file = it->second;
  } else {
    std::error_code ec;
    auto st = std::filesystem::status(default_file, ec);
    if (st.type() != std::filesystem::file_type::not_found) {
      if (ec) return error("config " + default_file.string() + ": cannot access: " + ec.message());
      file = default_file.string();
    }
  }

  if (file) {
    if (auto r = load.load_file(*file); !r) return error(r.error());
  }
  if (auto r = load.load_env(env); !r) return error(r.error());
  struct flag {
    const std::optional<std::string>& value;
    std::string_view name, path;
  };
  const flag flags[] = {{overrides.listen, "--listen", "listen"},
                        {overrides.redis_url, "--redis", "redis.url"},
                        {overrides.data_dir, "--data-dir", "data_dir"}};
  for (const auto& f : flags) {
    if (!f.value) continue;
    if (auto r = load.apply_flag(f.name, f.path, *f.value); !r) return error(r.error());
  }
  if (auto r = load.validate(); !r) return error(r.error());
  return cfg;
}

boost::system::result<config, std::string> parse_config_text(std::string_view text,
                                                             std::string_view label) {
  using result = boost::system::result<config, std::string>;
  config cfg;
  loader load(cfg);
  if (auto r = load.load_text(text, std::string(label)); !r)
    return result(boost::system::in_place_error, r.error());
  if (auto r = load.validate(); !r) return result(boost::system::in_place_error, r.error());
  return cfg;
}

std::map<std::string, std::string> environment_map(char** envp) {
  std::map<std::string, std::string> env;
  for (char** p = envp; p != nullptr && *p != nullptr; ++p) {
    std::string_view entry(*p);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(entry.substr(0, eq), entry.substr(eq + 1));  // first one wins, like getenv
  }
  return env;
}

boost::system::result<listen_address, std::string> parse_listen(std::string_view text) {
  listen_address address;
  std::string problem = listen_problem(text, &address);
  if (!problem.empty()) {
    return boost::system::result<listen_address, std::string>(
        boost::system::in_place_error,
        "invalid listen address '" + std::string(text) + "': " + problem);
  }
  return address;
}

bool is_loopback_listen(std::string_view listen) {
  auto address = parse_listen(listen);
  if (!address) return false;
  if (address->host == "localhost") return true;
  boost::system::error_code ec;
  const auto ip = boost::asio::ip::make_address(address->host, ec);
  return !ec && ip.is_loopback();
}

std::vector<std::string> config_warnings(const config& cfg) {
  std::vector<std::string> warnings;
  for (const auto& name : cfg.unknown_env) {
    warnings.push_back("unknown environment variable " + name + " is ignored");
  }
  if (cfg.auth.adapter_keys.empty()) {
    warnings.push_back(
        "auth.adapter_keys is empty: no channel adapter or AI engine can call the API");
  }
  if (cfg.auth.jwt_secret.empty()) {
    warnings.push_back("auth.jwt_secret is empty: staff dashboards cannot sign in");
  } else if (cfg.auth.jwt_secret.size() < 32) {
    warnings.push_back("auth.jwt_secret is shorter than 32 characters: use a long random secret");
  }
  if (cfg.auth.admin_token.empty()) {
    warnings.push_back("auth.admin_token is empty: admin requests are refused");
  }
  // GET /metrics tells queue depths, traffic and versions: not for everyone who can reach
  // `listen` (docs/configuration.md, "Protecting /metrics").
  const auto& metrics_at = cfg.metrics.listen.empty() ? cfg.listen : cfg.metrics.listen;
  if (cfg.metrics.token.empty() && !is_loopback_listen(metrics_at)) {
    warnings.push_back(
        (cfg.metrics.listen.empty() ? "listen " : "metrics.listen ") + metrics_at +
        " is not a loopback address and metrics.token is empty: anyone who reaches it can read "
        "GET /metrics; set metrics.token or a loopback metrics.listen (e.g. 127.0.0.1:9464)");
  }
  if (cfg.redis.url == "embedded" && cfg.redis.embedded.port == 0) {
    warnings.push_back(
        "redis.embedded.port is 0: the embedded Redis has no TCP listener, so an AI engine on "
        "this host must use its unix socket");
  }
  if (cfg.public_url.empty() && (cfg.channels.whatsapp || cfg.channels.twilio)) {
    warnings.push_back(
        "public_url is empty but channels are configured: Twilio webhook signatures cannot be "
        "verified and providers need it to reach the webhooks");
  }
  // An escalation goes out on a channel of this gateway from one of the property's accounts:
  // without the channel it waits on its queue; without an account of the property it is dead
  // (docs/outbound.md, "One property per channel").
  const auto has_account = [](const auto& section, const std::string& property_id) {
    return std::any_of(section.accounts.begin(), section.accounts.end(),
                       [&](const auto& a) { return a.property_id == property_id; });
  };
  for (std::size_t i = 0; i < cfg.properties.size(); ++i) {
    const auto& p = cfg.properties[i];
    if (!p.escalation) continue;
    const auto& e = *p.escalation;
    const auto key = "properties[" + std::to_string(i) + "].escalation.";
    if (!e.email.empty() && !cfg.channels.email)
      warnings.push_back(key + "email is set but channels.email is not configured: escalations " +
                         "wait on outbound:email and are never sent");
    else if (!e.email.empty() && !has_account(*cfg.channels.email, p.id))
      warnings.push_back(key + "email is set but no account of channels.email belongs to '" + p.id +
                         "': escalations go to outbound:email:dead and are never sent");
    if (!e.sms.empty() && !cfg.channels.twilio)
      warnings.push_back(key + "sms is set but channels.twilio is not configured: escalations " +
                         "wait on outbound:sms and are never sent");
    else if (!e.sms.empty() && !has_account(*cfg.channels.twilio, p.id))
      warnings.push_back(key + "sms is set but no account of channels.twilio belongs to '" + p.id +
                         "': escalations go to outbound:sms:dead and are never sent");
  }
  for (const auto& [name, policy] : cfg.ratelimit.policies) {
    if (policy.burst != 0 && policy.algorithm != "gcra") {
      warnings.push_back("ratelimit.policies." + name + ".burst is ignored: only gcra uses it");
    }
  }
  return warnings;
}

std::vector<std::string> webhook_warnings(const config& cfg) {
  std::vector<std::string> warnings;
  auto refused = [&](bool configured, const char* section, const char* routes) {
    if (!configured) {
      warnings.push_back(std::string(section) + " is not configured (no secret to verify its " +
                         "webhooks): " + routes + " answer 404 not_configured");
    }
  };
  refused(cfg.channels.whatsapp.has_value(), "channels.whatsapp", "GET/POST /v1/webhooks/whatsapp");
  refused(cfg.channels.twilio.has_value(), "channels.twilio",
          "POST /v1/webhooks/twilio/sms and /v1/webhooks/twilio/status");
  refused(cfg.channels.email.has_value(), "channels.email", "POST /v1/webhooks/email");
  if (!cfg.channels.webchat) {
    warnings.push_back(
        "channels.webchat is not configured: GET /v1/webchat answers 404 "
        "not_configured");
  }
  return warnings;
}

std::string generate_config_text(const std::string& data_dir, const std::string& listen) {
  const config d;  // defaults, so the text never drifts from the code
  auto n = [](auto v) { return std::to_string(v); };
  std::string t;
  t += "// bellhop configuration, generated by `bellhop gen-config`.\n";
  t += "// JSON with comments and trailing commas. BELLHOP_* environment variables and\n";
  t += "// command-line flags override what is set here; docs/configuration.md lists every key.\n";
  t += "// This file holds secrets: keep it private (0600; the installer makes it 0640 "
       "root:bellhop).\n";
  t += "{\n";
  t += "  // HTTP API address: host:port, [ipv6]:port or :port (all interfaces).\n";
  t += "  \"listen\": " + json::quote(listen) + ",\n";
  t += "  // State: the embedded Redis' data, its generated password and socket.\n";
  t += "  \"data_dir\": " + json::quote(data_dir) + ",\n";
  t += "  // How providers reach this gateway, e.g. \"https://gateway.example-hotel.com\".\n";
  t += "  // Needed for webhook signatures once channels are configured.\n";
  t += "  \"public_url\": \"\",\n";
  t += "  \"shutdown_timeout_ms\": " + n(d.shutdown_timeout_ms) + ",\n";
  t += "  \"http\": {\n";
  t +=
      "    \"threads\": " + n(d.http.threads) + ",  // 0 = one per CPU core but one (at least 1)\n";
  t += "    \"max_body_bytes\": " + n(d.http.max_body_bytes) + ",\n";
  t += "    \"read_timeout_ms\": " + n(d.http.read_timeout_ms) + ",\n";
  t += "    \"idle_timeout_ms\": " + n(d.http.idle_timeout_ms) + ",\n";
  t += "    \"max_connections\": " + n(d.http.max_connections) + ",\n";
  t += "    \"max_connections_per_ip\": " + n(d.http.max_connections_per_ip) + "\n";
  t +=
      "    // Behind a reverse proxy, its addresses, so that X-Forwarded-For is believed from it\n";
  t += "    // (and only from it): \"trusted_proxies\": [\"10.0.0.5\", \"fd00::/8\"]\n";
  t += "  },\n";
  t += "  \"redis\": {\n";
  t += "    // \"embedded\" runs a private redis-server in data_dir. For an external Redis:\n";
  t += "    // \"redis://user:password@host:6379/0\" or \"unix:///run/redis/redis.sock\".\n";
  t += "    \"url\": " + json::quote(d.redis.url) + ",\n";
  t += "    \"key_prefix\": " + json::quote(d.redis.key_prefix) + ",\n";
  t += "    \"command_timeout_ms\": " + n(d.redis.command_timeout_ms) + ",\n";
  t += "    \"connect_timeout_ms\": " + n(d.redis.connect_timeout_ms) + ",\n";
  t += "    \"embedded\": {\n";
  t += "      // Loopback TCP port for AI engines on this host (0 = unix socket only).\n";
  t += "      \"port\": " + n(d.redis.embedded.port) + ",\n";
  t += "      // \"everysec\" may lose up to a second of writes on power loss; \"always\" none.\n";
  t += "      \"durability\": " + json::quote(d.redis.embedded.durability) + ",\n";
  t += "      \"maxmemory\": " + json::quote(d.redis.embedded.maxmemory) +
       ",  // \"\": a quarter of RAM (256mb-8gb); \"0\": no limit; or e.g. \"512mb\"\n";
  t += "      \"redis_server\": " + json::quote(d.redis.embedded.redis_server) + "\n";
  t += "    }\n";
  t += "  },\n";
  t += "  \"log\": {\n";
  t += "    \"level\": " + json::quote(d.log.level) + ",  // trace, debug, info, warn, error\n";
  t += "    \"format\": " + json::quote(d.log.format) + "  // text or json\n";
  t += "  },\n";
  t +=
      "  // GET /metrics: when listen is public, protect it with a token or move it to loopback.\n";
  t += "  // \"metrics\": { \"token\": \"<16+ characters>\", \"listen\": \"127.0.0.1:9464\" },\n";
  t += "  \"auth\": {\n";
  t += "    // Bearer keys for channel adapters and AI engines; properties: ids or [\"*\"].\n";
  t += "    \"adapter_keys\": [\n";
  t += "      { \"name\": \"default-adapter\", \"key\": " + json::quote(random_secret()) +
       ", \"properties\": [\"*\"] }\n";
  t += "    ],\n";
  t += "    // Signs staff dashboard tokens (HS256); changing it signs everyone out.\n";
  t += "    \"jwt_secret\": " + json::quote(random_secret()) + ",\n";
  t += "    \"admin_token\": " + json::quote(random_secret()) + "\n";
  t += "  },\n";
  t += "  \"ratelimit\": {\n";
  t += "    // algorithm: fixed_window, sliding_window or gcra (gcra also takes \"burst\");\n";
  t += "    // \"fail\": \"open\" or \"closed\" (default) decides when Redis cannot. The "
       "providers'\n";
  t += "    // limits (whatsapp_business_number, twilio_sms_sender, …) are built in; a policy\n";
  t += "    // of the same name here redefines one (docs/configuration.md lists them).\n";
  t += "    \"policies\": {\n";
  t +=
      "      \"api\": { \"algorithm\": \"sliding_window\", \"limit\": 100, \"window_ms\": 1000 }\n";
  t += "    },\n";
  t += "    // Policy applied to POST /v1/messages/inbound per adapter key (\"\" = none).\n";
  t += "    \"inbound_api\": \"api\",\n";
  t += "    // Policy applied to each dashboard session's replies (\"\" = none).\n";
  t += "    \"staff_replies\": \"staff_reply\"\n";
  t += "  },\n";
  t += "  // The hotels this gateway serves (docs/properties.md): time zone, quiet hours (bulk\n";
  t += "  // messages wait until they end), escalation contact. Without this section, every\n";
  t += "  // property_id the config names is a property in UTC without quiet hours.\n";
  t += "  // \"properties\": [\n";
  t += "  //   { \"id\": \"hotel-berlin\", \"name\": \"Hotel Berlin\", \"time_zone\": "
       "\"Europe/Berlin\",\n";
  t += "  //     \"quiet_hours\": { \"start\": \"22:00\", \"end\": \"07:00\" },\n";
  t +=
      "  //     \"escalation\": { \"after_s\": 300, \"email\": \"duty@hotel-berlin.example\" } }\n";
  t += "  // ],\n";
  t += "  \"channels\": {\n";
  t += "    // Uncomment and fill in to enable a channel (and set public_url).\n";
  t += "    // \"whatsapp\": { \"app_secret\": \"\", \"verify_token\": \"\", \"access_token\": "
       "\"\",\n";
  t += "    //               \"phone_number_id\": \"\" },\n";
  t += "    // \"twilio\": { \"account_sid\": \"\", \"auth_token\": \"\", \"from\": \"+1...\" },\n";
  t += "    // \"email\": { \"webhook_secret\": \"\", \"from_address\": \"frontdesk@…\",\n";
  t +=
      "    //            \"smtp_url\": \"smtp://mail.example.com:587\", \"smtp_username\": \"\",\n";
  t += "    //            \"smtp_password\": \"\" }\n";
  t += "    // Several numbers, addresses or sites (docs/properties.md): \"accounts\": [{…}, …]\n";
  t += "    // (web chat: \"sites\"), each with its own property_id.\n";
  t += "  }\n";
  t += "}\n";
  return t;
}

boost::system::result<void, std::string> write_secret_file(const std::filesystem::path& path,
                                                           const std::string& text, bool force) {
  const std::string name = path.string();
  if (!force) {
    // O_EXCL: never follow or reuse an existing file; mode 0600 from the first instant.
    int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == EEXIST) {
      return fail(name + " already exists; refusing to overwrite it");
    }
    if (fd < 0) return fail("cannot create " + name + ": " + std::strerror(errno));
    auto written = write_all(fd, text);
    ::close(fd);
    if (!written) {
      ::unlink(name.c_str());
      return fail("cannot write " + name + ": " + written.error());
    }
    return {};
  }

  // Replace atomically: a fresh 0600 file next to the target, renamed over it. Truncating the
  // old file in place would keep its (possibly wider) mode.
  std::string tmp = name + ".tmp-XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // creates with O_EXCL and mode 0600
  if (fd < 0) return fail("cannot create " + name + ": " + std::strerror(errno));
  auto written = write_all(fd, text);
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    return fail("cannot write " + name + ": " + written.error());
  }
  if (::rename(tmp.c_str(), name.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return fail("cannot replace " + name + ": " + std::strerror(err));
  }
  return {};
}

std::vector<property_reference> property_references(const config& cfg) {
  std::vector<property_reference> refs;
  // Each channel account names its property: channels.<name>.property_id in the one-account
  // form, channels.<name>.accounts[i].property_id (sites[i] for web chat) in the list form.
  auto channel = [&](std::string_view name, const auto& section, const auto& accounts,
                     std::string_view list) {
    if (!section) return;
    const std::string prefix = "channels." + std::string(name) + ".";
    if (!section->property_id.empty() || accounts.empty()) {
      refs.push_back({prefix + "property_id", section->property_id});
      return;
    }
    for (std::size_t i = 0; i < accounts.size(); ++i)
      refs.push_back({prefix + std::string(list) + "[" + std::to_string(i) + "].property_id",
                      accounts[i].property_id});
  };
  const auto& ch = cfg.channels;
  if (ch.whatsapp) channel("whatsapp", ch.whatsapp, ch.whatsapp->accounts, "accounts");
  if (ch.twilio) channel("twilio", ch.twilio, ch.twilio->accounts, "accounts");
  if (ch.email) channel("email", ch.email, ch.email->accounts, "accounts");
  if (ch.webchat) channel("webchat", ch.webchat, ch.webchat->sites, "sites");
  for (std::size_t i = 0; i < cfg.auth.adapter_keys.size(); ++i) {
    const auto& ids = cfg.auth.adapter_keys[i].properties;
    for (std::size_t j = 0; j < ids.size(); ++j) {
      if (ids[j] == "*") continue;
      refs.push_back({std::string(adapter_keys_path) + "[" + std::to_string(i) + "].properties[" +
                          std::to_string(j) + "]",
                      ids[j]});
    }
  }
  return refs;
}

const property* find_property(const config& cfg, std::string_view id) {
  for (const auto& p : cfg.properties) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

std::map<std::string, std::vector<channel_account>> channel_accounts(const config& cfg) {
  std::map<std::string, std::vector<channel_account>> out;
  if (cfg.channels.whatsapp) {
    auto& list = out["whatsapp"];
    for (const auto& a : cfg.channels.whatsapp->accounts)
      list.push_back({a.phone_number_id, a.property_id});
  }
  if (cfg.channels.twilio) {
    auto& list = out["sms"];
    for (const auto& a : cfg.channels.twilio->accounts) list.push_back({a.from, a.property_id});
  }
  if (cfg.channels.email) {
    auto& list = out["email"];
    for (const auto& a : cfg.channels.email->accounts) list.push_back({a.id, a.property_id});
  }
  if (cfg.channels.webchat) {
    auto& list = out["webchat"];
    for (const auto& s : cfg.channels.webchat->sites) list.push_back({s.id, s.property_id});
  }
  return out;
}

}  // namespace bellhop::gateway
