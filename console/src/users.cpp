#include "bellhop/console/users.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "bellhop/console/lua.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {
namespace {

using boost::system::error_code;

// sodium_init once per process; it fails only when the system's random source cannot be
// opened, and then no password can be hashed safely.
bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string redis_error(error_code ec, const broker::reply& r) {
  if (ec) return "Redis: " + ec.message();
  if (r.is_error()) return "Redis: " + r.str();
  return "Redis: unexpected reply";
}

}  // namespace

bool is_user_name(std::string_view s) {
  return !s.empty() && s.size() <= max_user_name_bytes &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || c == '@';
         });
}

bool is_role(std::string_view s) {
  return s == "staff" || s == "admin";
}

std::string check_password(std::string_view password) {
  if (password.size() < min_password_bytes)
    return "password too short: at least " + std::to_string(min_password_bytes) + " characters";
  if (password.size() > max_password_bytes)
    return "password too long: at most " + std::to_string(max_password_bytes) + " bytes";
  if (password.find('\0') != std::string_view::npos) return "the password contains a NUL byte";
  return {};
}

std::optional<std::string> hash_password(std::string_view password) {
  if (!sodium_ready()) return std::nullopt;
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return std::nullopt;
  return std::string(out);
}

bool verify_password(std::string_view stored, std::string_view password) {
  // libsodium reads `stored` as a C string of at most STRBYTES - 1 characters.
  if (!sodium_ready() || stored.empty() || stored.size() >= crypto_pwhash_STRBYTES ||
      stored.find('\0') != std::string_view::npos)
    return false;
  char buf[crypto_pwhash_STRBYTES] = {};
  std::copy(stored.begin(), stored.end(), buf);
  return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

void wipe(std::string& secret) noexcept {
  sodium_memzero(secret.data(), secret.size());
  secret.clear();
}

std::string properties_json(const std::vector<std::string>& properties) {
  std::string out = "[";
  for (const auto& p : properties) {
    if (out.size() > 1) out += ',';
    out += json::quote(p);
  }
  return out + "]";
}

std::optional<std::vector<std::string>> parse_properties(std::string_view text) {
  rapidjson::Document d;
  if (!json::parse(text, d, {.max_bytes = 32 * 1024, .max_depth = 2}) || !d.IsArray() ||
      d.Size() > max_user_properties)
    return std::nullopt;
  std::vector<std::string> out;
  for (const auto& v : d.GetArray()) {
    if (!v.IsString()) return std::nullopt;
    std::string p(v.GetString(), v.GetStringLength());
    if (p != "*" && !contract::is_property_id(p)) return std::nullopt;
    out.push_back(std::move(p));
  }
  return out;
}

user_store::user_store(broker::broker& redis, contract::key_space keys)
    : redis_(redis),
      keys_(std::move(keys)),
      add_(broker::script::make("console_user_add", std::string(lua::user_add))),
      change_(broker::script::make("console_user_change", std::string(lua::user_change))),
      list_(broker::script::make("console_user_list", std::string(lua::user_list))) {}

void user_store::add(const std::string& name, const std::string& hash, const std::string& role,
                     const std::vector<std::string>& properties, boost::asio::any_io_executor ex,
                     done_handler done) {
  redis_.eval(add_, {keys_.console_users(), keys_.console_user(name)},
              {name, hash, role, properties_json(properties), std::to_string(now_ms())}, ex,
              [name, done = std::move(done)](error_code ec, broker::reply r) {
                if (ec || !r.is_string()) return done(redis_error(ec, r));
                if (r.str() == "exists") return done("user '" + name + "' exists");
                done({});
              });
}

void user_store::list(boost::asio::any_io_executor ex, list_handler done) {
  redis_.eval(list_, {keys_.console_users()}, {keys_.console_user("")}, ex,
              [done = std::move(done)](error_code ec, broker::reply r) {
                if (ec || !r.is_array()) return done(redis_error(ec, r), {});
                std::vector<user_record> out;
                const auto& e = r.elements();
                for (std::size_t i = 0; i + 4 < e.size(); i += 5) {
                  user_record u;
                  u.name = e[i].str();
                  u.role = e[i + 1].str();
                  u.properties =
                      parse_properties(e[i + 2].str()).value_or(std::vector<std::string>{});
                  u.disabled = e[i + 3].str() == "1";
                  const auto& at = e[i + 4].str();
                  std::from_chars(at.data(), at.data() + at.size(), u.created_at);
                  out.push_back(std::move(u));
                }
                done({}, std::move(out));
              });
}

void user_store::set_disabled(const std::string& name, bool disabled,
                              boost::asio::any_io_executor ex, done_handler done) {
  change(disabled ? "disable" : "enable", name, {}, std::move(ex), std::move(done));
}

void user_store::set_password(const std::string& name, const std::string& hash,
                              boost::asio::any_io_executor ex, done_handler done) {
  change("passwd", name, hash, std::move(ex), std::move(done));
}

void user_store::change(const std::string& op, const std::string& name, const std::string& hash,
                        boost::asio::any_io_executor ex, done_handler done) {
  redis_.eval(change_, {keys_.console_user(name), keys_.console_user_sessions(name)},
              {op, name, std::to_string(now_ms()), keys_.console_session(""),
               keys_.console_revoked(), hash},
              ex, [name, done = std::move(done)](error_code ec, broker::reply r) {
                if (!ec && r.is_string() && r.str() == "unknown")
                  return done("unknown user '" + name + "'");
                if (ec || !r.is_integer()) return done(redis_error(ec, r));
                done({});
              });
}

}  // namespace bellhop::gateway
